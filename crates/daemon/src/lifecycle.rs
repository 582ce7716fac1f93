//! A container's lifecycle as an explicit state machine, and its restart policy.

use crate::DaemonError;
use std::time::Duration;

/// Where a container is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Created, never started.
    Created,
    /// Its guest is running.
    Running,
    /// Its guest is suspended at an epoch check.
    Paused,
    /// Its last run ended; the restart policy is waiting out its backoff.
    Restarting,
    /// Its last run ended and it will not restart by itself.
    Exited,
    /// It cannot run: its saved config is unusable (written by another version). It
    /// can only be inspected and removed.
    Dead,
}

/// What an operator asks of a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Start (or start again).
    Start,
    /// Stop politely, then kill.
    Stop,
    /// Kill at once.
    Kill,
    /// Suspend.
    Pause,
    /// Resume.
    Unpause,
    /// Remove without force.
    Remove,
}

impl State {
    /// The name the API and `wedge ps` use.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Created => "created",
            State::Running => "running",
            State::Paused => "paused",
            State::Restarting => "restarting",
            State::Exited => "exited",
            State::Dead => "dead",
        }
    }

    /// Every state, in lifecycle order.
    pub const ALL: [State; 6] = [
        State::Created,
        State::Running,
        State::Paused,
        State::Restarting,
        State::Exited,
        State::Dead,
    ];

    /// Parses [`State::as_str`]'s names.
    pub fn parse(s: &str) -> Option<State> {
        State::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// Whether a run (or a restart backoff) is in progress.
    pub fn is_active(self) -> bool {
        matches!(self, State::Running | State::Paused | State::Restarting)
    }

    /// Checks that `action` is allowed now; the error names the container and why not.
    pub fn check(self, action: Action, name: &str) -> Result<(), DaemonError> {
        let allowed = match action {
            Action::Start => matches!(self, State::Created | State::Exited),
            Action::Stop | Action::Kill => self.is_active(),
            Action::Pause => self == State::Running,
            Action::Unpause => self == State::Paused,
            Action::Remove => !self.is_active(),
        };
        if allowed {
            return Ok(());
        }
        let why = match (action, self) {
            (Action::Start, State::Dead) => {
                format!("container `{name}` is dead (its config is unusable): remove it")
            }
            (Action::Start, _) => format!("container `{name}` is already {}", self.as_str()),
            (Action::Remove, _) => format!(
                "cannot remove container `{name}`: it is {} (stop it first or use force)",
                self.as_str()
            ),
            (Action::Unpause, _) => format!("container `{name}` is not paused"),
            (Action::Pause, State::Paused) => format!("container `{name}` is already paused"),
            _ => format!("container `{name}` is not running"),
        };
        Err(DaemonError::Conflict(why))
    }
}

/// When the daemon starts a container again by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartPolicy {
    /// Never.
    No,
    /// After a failure (non-zero exit, trap, limit, kill by the daemon's crash), at
    /// most `max` times when given.
    OnFailure(Option<u32>),
    /// After any exit, unless an operator stopped it; also when the daemon starts.
    Always,
    /// Like `always`, but a container an operator stopped stays stopped across daemon
    /// restarts too.
    UnlessStopped,
}

impl std::str::FromStr for RestartPolicy {
    type Err = DaemonError;
    fn from_str(s: &str) -> Result<RestartPolicy, DaemonError> {
        let invalid = || {
            DaemonError::BadRequest(format!(
                "invalid restart policy `{s}`: expected `no`, `on-failure[:MAX]`, `always` or `unless-stopped`"
            ))
        };
        Ok(match s {
            "" | "no" => RestartPolicy::No,
            "always" => RestartPolicy::Always,
            "unless-stopped" => RestartPolicy::UnlessStopped,
            "on-failure" => RestartPolicy::OnFailure(None),
            _ => match s.strip_prefix("on-failure:") {
                Some(n) => RestartPolicy::OnFailure(Some(n.parse().map_err(|_| invalid())?)),
                None => return Err(invalid()),
            },
        })
    }
}

impl std::fmt::Display for RestartPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RestartPolicy::No => f.write_str("no"),
            RestartPolicy::OnFailure(None) => f.write_str("on-failure"),
            RestartPolicy::OnFailure(Some(n)) => write!(f, "on-failure:{n}"),
            RestartPolicy::Always => f.write_str("always"),
            RestartPolicy::UnlessStopped => f.write_str("unless-stopped"),
        }
    }
}

/// The exit code recorded for a run the daemon's own death ended (128 + SIGKILL).
pub const KILLED_BY_CRASH: i32 = 137;

/// First restart delay; each restart in a row doubles it.
const BACKOFF_START: Duration = Duration::from_millis(100);
/// The longest restart delay.
const BACKOFF_MAX: Duration = Duration::from_secs(60);
/// A run this long resets the backoff to its start.
pub const BACKOFF_RESET_AFTER: Duration = Duration::from_secs(10);

impl RestartPolicy {
    /// Whether a run that ended with `exit_code`, after `restarts` restarts so far,
    /// should be followed by another. An operator's stop or kill never restarts.
    pub fn should_restart(self, exit_code: i32, restarts: u32, stopped_by_operator: bool) -> bool {
        if stopped_by_operator {
            return false;
        }
        match self {
            RestartPolicy::No => false,
            RestartPolicy::OnFailure(max) => exit_code != 0 && max.is_none_or(|m| restarts < m),
            RestartPolicy::Always | RestartPolicy::UnlessStopped => true,
        }
    }

    /// Whether the daemon starts the container when the daemon itself starts, given
    /// the state it found recorded. A container that was running when the daemon died
    /// counts as a failed run (exit 137); an exited one is started again only by
    /// `always` (as Docker does), or by `unless-stopped` when no operator stopped it.
    pub fn starts_with_daemon(
        self,
        found: State,
        restarts: u32,
        stopped_by_operator: bool,
    ) -> bool {
        if found.is_active() {
            return self.should_restart(KILLED_BY_CRASH, restarts, stopped_by_operator);
        }
        match self {
            RestartPolicy::Always => found == State::Exited,
            RestartPolicy::UnlessStopped => found == State::Exited && !stopped_by_operator,
            RestartPolicy::No | RestartPolicy::OnFailure(_) => false,
        }
    }

    /// The delay before restart number `streak` of a run of quick failures (0-based):
    /// 100 ms, 200 ms, 400 ms … capped at 60 s.
    pub fn backoff(streak: u32) -> Duration {
        BACKOFF_START
            .saturating_mul(1u32.checked_shl(streak.min(20)).unwrap_or(u32::MAX))
            .min(BACKOFF_MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transitions() {
        assert!(State::Created.check(Action::Start, "a").is_ok());
        assert!(State::Exited.check(Action::Start, "a").is_ok());
        let err = State::Running.check(Action::Start, "a").unwrap_err();
        assert_eq!(err.to_string(), "container `a` is already running");
        assert!(State::Running.check(Action::Pause, "a").is_ok());
        assert!(State::Paused.check(Action::Pause, "a").is_err());
        assert!(State::Paused.check(Action::Unpause, "a").is_ok());
        assert!(State::Running.check(Action::Unpause, "a").is_err());
        assert!(State::Exited.check(Action::Stop, "a").is_err());
        assert!(State::Restarting.check(Action::Stop, "a").is_ok());
        assert!(State::Running.check(Action::Remove, "a").is_err());
        assert!(State::Dead.check(Action::Remove, "a").is_ok());
        assert!(State::Dead.check(Action::Start, "a").is_err());
        for s in [
            "created",
            "running",
            "paused",
            "restarting",
            "exited",
            "dead",
        ] {
            assert_eq!(State::parse(s).unwrap().as_str(), s);
        }
    }

    #[test]
    fn policies() {
        for s in [
            "no",
            "always",
            "unless-stopped",
            "on-failure",
            "on-failure:5",
        ] {
            assert_eq!(s.parse::<RestartPolicy>().unwrap().to_string(), s);
        }
        assert!("sometimes".parse::<RestartPolicy>().is_err());
        assert!("on-failure:x".parse::<RestartPolicy>().is_err());
        let p = RestartPolicy::OnFailure(Some(2));
        assert!(p.should_restart(1, 0, false));
        assert!(p.should_restart(134, 1, false));
        assert!(!p.should_restart(1, 2, false));
        assert!(!p.should_restart(0, 0, false));
        assert!(!RestartPolicy::Always.should_restart(0, 0, true));
        assert!(RestartPolicy::Always.should_restart(0, 99, false));
        assert_eq!(RestartPolicy::backoff(0), Duration::from_millis(100));
        assert_eq!(RestartPolicy::backoff(3), Duration::from_millis(800));
        assert_eq!(RestartPolicy::backoff(40), Duration::from_secs(60));
        assert!(RestartPolicy::UnlessStopped.starts_with_daemon(State::Exited, 0, false));
        assert!(!RestartPolicy::UnlessStopped.starts_with_daemon(State::Exited, 0, true));
        assert!(RestartPolicy::Always.starts_with_daemon(State::Exited, 0, true));
        assert!(!RestartPolicy::Always.starts_with_daemon(State::Created, 0, false));
        assert!(RestartPolicy::OnFailure(None).starts_with_daemon(State::Running, 0, false));
        assert!(!RestartPolicy::OnFailure(Some(1)).starts_with_daemon(State::Running, 1, false));
        assert!(!RestartPolicy::OnFailure(None).starts_with_daemon(State::Exited, 0, false));
        assert!(!RestartPolicy::No.starts_with_daemon(State::Running, 0, false));
    }
}
