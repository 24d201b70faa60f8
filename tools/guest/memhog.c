// SPDX-License-Identifier: GPL-2.0
/*
 * memhog: allocate guest memory, touch it, free it, and say when.
 *
 *   memhog alloc-free MIB [HOLD_MS]   one anonymous mapping, touched, then
 *                                     unmapped at once
 *   memhog scatter MIB [HOLD_MS [PRE_MS]]
 *                                     touch MIB of small pages (no THP: a
 *                                     partly unmapped THP is only freed when
 *                                     memory runs short), wait PRE_MS
 *                                     (default HOLD_MS), free every other
 *                                     4 KiB page (MADV_DONTNEED), hold, then
 *                                     free the rest
 *
 * With MEMHOG_RELEASE=PATH in the environment, the scatter mode holds the
 * rest of its mapping until PATH exists instead of for HOLD_MS, and the
 * alloc-free mode waits for PATH before it unmaps instead of for HOLD_MS: a
 * test that reads the host's or the guest's view in between says when it
 * is done. With MEMHOG_READY=PATH, memhog creates PATH once its memory is
 * allocated and touched.
 *
 * Prints "PH-MARK <event> <MiB>" lines that the host runner timestamps:
 * allocated, then freeing (alloc-free) or scattering (scatter) right before
 * the first page is freed, freed-scattered, and freed when all is unmapped.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096UL

static void mark(const char *event, unsigned long mib)
{
	printf("PH-MARK %s %lu\n", event, mib);
	fflush(stdout);
}

static void sleep_ms(unsigned long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* Wait until the file named by the environment variable @var exists. */
static void await_file(const char *var)
{
	while (access(getenv(var), F_OK))
		sleep_ms(10);
}

static char *alloc_touch(unsigned long bytes, int huge)
{
	char *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED) {
		perror("mmap");
		exit(2);
	}
	madvise(p, bytes, huge ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
	for (unsigned long off = 0; off < bytes; off += PAGE)
		p[off] = (char)(off >> 12) | 1;
	return p;
}

int main(int argc, char **argv)
{
	unsigned long mib, bytes, hold, pre;
	char *p;

	if (argc < 3) {
		fprintf(stderr, "usage: memhog alloc-free|scatter MIB [HOLD_MS [PRE_MS]]\n");
		return 2;
	}
	mib = strtoul(argv[2], NULL, 0);
	hold = argc > 3 ? strtoul(argv[3], NULL, 0) : 1000;
	pre = argc > 4 ? strtoul(argv[4], NULL, 0) : hold;
	bytes = mib << 20;

	p = alloc_touch(bytes, strcmp(argv[1], "scatter") != 0);
	mark("allocated", mib);
	if (getenv("MEMHOG_READY")) {
		FILE *f = fopen(getenv("MEMHOG_READY"), "w");

		if (f)
			fclose(f);
	}

	if (!strcmp(argv[1], "alloc-free")) {
		if (getenv("MEMHOG_RELEASE"))
			await_file("MEMHOG_RELEASE");
		else
			sleep_ms(pre);
		mark("freeing", mib);
		munmap(p, bytes);
		mark("freed", mib);
	} else if (!strcmp(argv[1], "scatter")) {
		sleep_ms(pre);
		mark("scattering", mib / 2);
		for (unsigned long off = 0; off < bytes; off += 2 * PAGE)
			madvise(p + off, PAGE, MADV_DONTNEED);
		mark("freed-scattered", mib / 2);
		if (getenv("MEMHOG_RELEASE")) {
			await_file("MEMHOG_RELEASE");
		} else {
			sleep_ms(hold);
		}
		munmap(p, bytes);
		mark("freed", mib);
	} else {
		fprintf(stderr, "memhog: unknown mode %s\n", argv[1]);
		return 2;
	}
	return 0;
}
