/* The MPS2 AN386's devices for the C firmware, and the board wedge-micro's C API is
   given: UART0 (CMSDK) as the console, SysTick at 1 kHz on the 25 MHz clock, a
   pseudo-random generator (QEMU's board has no entropy source), wfi to rest. */
#include "board.h"

#define REG(addr) (*(volatile uint32_t *)(addr))

#define UART0_DATA REG(0x40004000u)
#define UART0_STATE REG(0x40004004u)
#define UART0_CTRL REG(0x40004008u)
#define UART0_BAUDDIV REG(0x40004010u)
#define UART_TX_FULL 1u
#define UART_TX_ENABLE 1u

#define SYST_CSR REG(0xE000E010u)
#define SYST_RVR REG(0xE000E014u)
#define SYST_CVR REG(0xE000E018u)
#define SCB_ICSR REG(0xE000ED04u)
#define ICSR_PENDSTSET (1u << 26)

#define SYSCLK_HZ 25000000u
#define RELOAD (SYSCLK_HZ / 1000u - 1u)
#define NS_PER_CYCLE (1000000000u / SYSCLK_HZ)

/* Milliseconds since boot. */
static volatile uint64_t ticks;
static uint32_t rng = 0x9E3779B9u;

void SysTick_Handler(void) { ticks++; }

void board_init(void) {
    UART0_BAUDDIV = 16;
    UART0_CTRL = UART_TX_ENABLE;
    SYST_RVR = RELOAD;
    SYST_CVR = 0;
    /* Core clock, interrupt, counter on. */
    SYST_CSR = 7;
}

void uart_write(const uint8_t *bytes, size_t len) {
    for (size_t i = 0; i < len; i++) {
        while (UART0_STATE & UART_TX_FULL) {
        }
        UART0_DATA = bytes[i];
    }
}

static void console(void *ctx, const uint8_t *bytes, size_t len) {
    (void)ctx;
    uart_write(bytes, len);
}

static uint64_t monotonic_ns(void *ctx) {
    (void)ctx;
    uint32_t primask;
    __asm__ volatile("mrs %0, primask\n cpsid i" : "=r"(primask) : : "memory");
    uint64_t now = ticks;
    uint32_t current = SYST_CVR;
    /* A tick that came while interrupts were masked: count it, read the counter again. */
    if (SCB_ICSR & ICSR_PENDSTSET) {
        now++;
        current = SYST_CVR;
    }
    __asm__ volatile("msr primask, %0" : : "r"(primask) : "memory");
    return now * 1000000u + (uint64_t)(RELOAD - current) * NS_PER_CYCLE;
}

static uint64_t realtime_ns(void *ctx) {
    /* No real-time clock: time since boot. */
    return monotonic_ns(ctx);
}

static void random_bytes(void *ctx, uint8_t *buf, size_t len) {
    (void)ctx;
    /* xorshift32: not cryptographic; a real board reads its TRNG here. */
    for (size_t i = 0; i < len; i++) {
        rng ^= rng << 13;
        rng ^= rng >> 17;
        rng ^= rng << 5;
        buf[i] = (uint8_t)rng;
    }
}

static void idle(void *ctx) {
    (void)ctx;
    __asm__ volatile("wfi");
}

const wedge_micro_board_t BOARD = {
    .ctx = 0,
    .console = console,
    .monotonic_ns = monotonic_ns,
    .realtime_ns = realtime_ns,
    .random = random_bytes,
    .idle = idle,
};
