// SPDX-License-Identifier: GPL-2.0
/*
 * ph-exit STATUS: end the guest with STATUS through QEMU's isa-debug-exit
 * device (iobase 0xf4). QEMU exits with (STATUS << 1) | 1.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/io.h>
#include <termios.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	int status = argc > 1 ? atoi(argv[1]) : 0;
	int fd;

	if (ioperm(0xf4, 4, 1)) {
		perror("ioperm");
		return 1;
	}
	sync();
	/*
	 * What the scenario wrote last (its final marks) may still sit in the
	 * serial driver's transmit buffer: QEMU exits at the outl() below and
	 * drops it. Wait until the console has sent everything.
	 */
	fd = open("/dev/console", O_WRONLY | O_NOCTTY);
	if (fd >= 0) {
		tcdrain(fd);
		close(fd);
	}
	outl(status & 0x7f, 0xf4);
	/* Only reached without the device. */
	fprintf(stderr, "ph-exit: no isa-debug-exit device\n");
	return 1;
}
