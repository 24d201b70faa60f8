// SPDX-License-Identifier: GPL-2.0
/*
 * phases: a guest whose memory use rises and falls, for the footprint
 * benchmark (make bench, workloads phases and fleet). For SECONDS it repeats
 * a 12 s cycle; the first begins after OFFSET seconds (fleet guests peak at
 * different times):
 *
 *   0 s  map and touch a THP-backed anonymous mapping (256-448 MiB, a
 *        different size each cycle), a 4 KiB-page one (64-128 MiB), and
 *        read CACHE_MIB of PATH into the page cache (when given)
 *   5 s  unmap the THP mapping, free every other 4 KiB page of the small one
 *   6 s  drop PATH's page cache (POSIX_FADV_DONTNEED)
 *   8 s  unmap the rest of the small mapping
 *  12 s  the next cycle
 *
 *   phases SECONDS [OFFSET [PATH [CACHE_MIB]]]
 *
 * Prints "PH-MARK phases-start", "PH-MARK phases-peak N" when a cycle holds
 * all of its memory, then "PH-MARK phases-parts N THP SMALL CACHE": the
 * milliseconds its THP mapping, its 4 KiB one and its page cache read took,
 * "PH-MARK phases-held N MIB" at the peak and after each free (the MiB the
 * cycle still holds, in 4 KiB pages), and at the end "PH-MARK phases-end CYCLES MIB" (MiB touched).
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096UL
#define MIB (1UL << 20)
#define CYCLE 12.0

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void until(double t)
{
	double d = t - now();

	if (d > 0) {
		struct timespec ts = { (time_t)d, (long)((d - (time_t)d) * 1e9) };

		nanosleep(&ts, NULL);
	}
}

static void mark(const char *what, unsigned long v)
{
	printf("PH-MARK %s %lu\n", what, v);
	fflush(stdout);
}

/* What the pattern holds from now on, for the bench's ideal footprint. */
static void held(unsigned long cycle, unsigned long bytes)
{
	printf("PH-MARK phases-held %lu %lu\n", cycle, bytes / MIB);
	fflush(stdout);
}

static char *map_touch(unsigned long len, int huge)
{
	char *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED) {
		perror("phases: mmap");
		exit(2);
	}
	madvise(p, len, huge ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
	for (unsigned long off = 0; off < len; off += PAGE)
		p[off] = (char)(off >> 12) | 1;
	return p;
}

static void read_cache(int fd, unsigned long len)
{
	static char buf[1 << 20];

	for (unsigned long off = 0; off < len; off += sizeof(buf))
		if (pread(fd, buf, sizeof(buf), off) <= 0)
			break;
}

int main(int argc, char **argv)
{
	static const unsigned long thp_mib[] = { 384, 256, 448, 320 };
	static const unsigned long small_mib[] = { 64, 128, 96 };
	double secs, offset, t0, end, t[4];
	unsigned long cache;
	unsigned long cache_mib, touched = 0, cycle = 0;
	int fd = -1;

	if (argc < 2) {
		fprintf(stderr, "usage: phases SECONDS [OFFSET [PATH [CACHE_MIB]]]\n");
		return 2;
	}
	secs = strtod(argv[1], NULL);
	offset = argc > 2 ? strtod(argv[2], NULL) : 0;
	cache_mib = argc > 4 ? strtoul(argv[4], NULL, 0) : 128;
	if (argc > 3) {
		fd = open(argv[3], O_RDONLY);
		if (fd < 0) {
			perror("phases: open");
			return 2;
		}
	}
	t0 = now();
	end = t0 + secs;
	mark("phases-start", (unsigned long)offset);
	for (double c = t0 + offset; c + CYCLE <= end; c += CYCLE, cycle++) {
		unsigned long thp = thp_mib[cycle % 4] * MIB;
		unsigned long small = small_mib[cycle % 3] * MIB;
		char *a, *b;

		until(c);
		t[0] = now();
		a = map_touch(thp, 1);
		t[1] = now();
		b = map_touch(small, 0);
		t[2] = now();
		if (fd >= 0)
			read_cache(fd, cache_mib * MIB);
		t[3] = now();
		touched += (thp + small) / MIB;
		cache = fd >= 0 ? cache_mib * MIB : 0;
		mark("phases-peak", cycle);
		held(cycle, thp + small + cache);
		printf("PH-MARK phases-parts %lu %.0f %.0f %.0f\n", cycle,
		       1e3 * (t[1] - t[0]), 1e3 * (t[2] - t[1]),
		       1e3 * (t[3] - t[2]));
		fflush(stdout);
		until(c + 5);
		munmap(a, thp);
		for (unsigned long off = 0; off < small; off += 2 * PAGE)
			madvise(b + off, PAGE, MADV_DONTNEED);
		held(cycle, small / 2 + cache);
		until(c + 6);
		if (fd >= 0)
			posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
		held(cycle, small / 2);
		until(c + 8);
		munmap(b, small);
		held(cycle, 0);
	}
	until(end);
	printf("PH-MARK phases-end %lu %lu\n", cycle, touched);
	return 0;
}
