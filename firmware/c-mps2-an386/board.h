/* The MPS2 AN386 as QEMU models it, for the C firmware: the console on UART0, clocks
   from SysTick, semihosting for the exit status, and what the firmware measures of its
   RAM. */
#ifndef BOARD_H
#define BOARD_H

#include <stddef.h>
#include <stdint.h>
#include "wedge_micro.h"

/* Turns on UART0's transmitter and the 1 kHz SysTick. */
void board_init(void);

/* The board as wedge-micro's C API wants it. */
extern const wedge_micro_board_t BOARD;

/* Writes bytes on UART0. */
void uart_write(const uint8_t *bytes, size_t len);

/* Ends the QEMU run through semihosting: exit status 0 when ok, 1 otherwise. */
void semihosting_exit(int ok) __attribute__((noreturn));

/* RAM used so far, in bytes: statics, the C heap's high-water mark (sbrk), the main
   stack's deepest point (painted at reset). */
size_t ram_statics(void);
size_t ram_heap_peak(void);
size_t ram_stack_peak(void);

#endif
