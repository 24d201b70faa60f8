// SPDX-License-Identifier: GPL-2.0
/*
 * ph-exit STATUS: end the guest with STATUS through QEMU's isa-debug-exit
 * device (iobase 0xf4). QEMU exits with (STATUS << 1) | 1.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/io.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	int status = argc > 1 ? atoi(argv[1]) : 0;

	if (ioperm(0xf4, 4, 1)) {
		perror("ioperm");
		return 1;
	}
	sync();
	outl(status & 0x7f, 0xf4);
	/* Only reached without the device. */
	fprintf(stderr, "ph-exit: no isa-debug-exit device\n");
	return 1;
}
