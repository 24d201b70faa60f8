// SPDX-License-Identifier: GPL-2.0
/*
 * ph-fuzz: fuzz a numeric sysfs knob's store handler from userspace.
 *
 *   ph-fuzz FILE MIN MAX ITERATIONS [SEED]
 *
 * Writes random byte strings (random bytes, digit runs, near-valid numbers
 * with junk, values around the bounds and past 2^64) and checks each
 * answer against a model of the grammar: the write succeeds exactly when
 * the bytes are decimal digits with at most one trailing newline and the
 * value lies in MIN..=MAX, the knob then reads back that value; any other
 * write fails with EINVAL and the knob keeps its value. Prints
 * "PH-MARK fuzz <file> <writes> <accepted>" or "PH-FAIL ..." and exits 1.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static uint64_t rng = 88172645463325252ULL;

static uint64_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static int read_value(const char *path, unsigned long long *v)
{
	char buf[64];
	int fd = open(path, O_RDONLY);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	return sscanf(buf, "%llu", v) == 1 ? 0 : -1;
}

/* The model: 1 and the value if the knob must take these bytes. */
static int model(const unsigned char *b, size_t n, unsigned long long min,
		 unsigned long long max, unsigned long long *out)
{
	unsigned long long v = 0;

	if (n && b[n - 1] == '\n')
		n--;
	if (!n)
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (b[i] < '0' || b[i] > '9')
			return 0;
		if (v > (UINT64_MAX - (b[i] - '0')) / 10)
			return 0;
		v = v * 10 + (b[i] - '0');
	}
	if (v < min || v > max)
		return 0;
	*out = v;
	return 1;
}

static size_t gen(unsigned char *b, unsigned long long min, unsigned long long max)
{
	size_t n = 0;
	unsigned long long v;

	switch (next() % 6) {
	case 0: /* random bytes */
		n = 1 + next() % 40;
		for (size_t i = 0; i < n; i++)
			b[i] = next();
		return n;
	case 1: /* digits, maybe too many */
		n = 1 + next() % 25;
		for (size_t i = 0; i < n; i++)
			b[i] = '0' + next() % 10;
		break;
	case 2: /* around the bounds */
		v = (next() & 1 ? min : max) + (next() % 5) - 2;
		n = sprintf((char *)b, "%llu", v);
		break;
	case 3: /* in range */
		v = min + next() % (max - min + 1 ? max - min + 1 : 1);
		n = sprintf((char *)b, "%llu", v);
		break;
	case 4: /* a number with one byte changed */
		v = min + next() % (max - min + 1 ? max - min + 1 : 1);
		n = sprintf((char *)b, "%llu", v);
		b[next() % n] = next();
		break;
	default: /* past 2^64 */
		n = sprintf((char *)b, "1844674407370955161%u", (unsigned)(6 + next() % 4));
		break;
	}
	if (next() % 3 == 0)
		b[n++] = '\n';
	if (next() % 8 == 0)
		b[n++] = next() % 2 ? '\n' : 0;
	return n;
}

int main(int argc, char **argv)
{
	unsigned long long min, max, iters, cur, want, got, accepted = 0;
	unsigned char b[128];
	const char *path;

	if (argc < 5) {
		fprintf(stderr, "usage: ph-fuzz FILE MIN MAX ITERATIONS [SEED]\n");
		return 2;
	}
	path = argv[1];
	min = strtoull(argv[2], NULL, 0);
	max = strtoull(argv[3], NULL, 0);
	iters = strtoull(argv[4], NULL, 0);
	if (argc > 5)
		rng ^= strtoull(argv[5], NULL, 0);
	if (read_value(path, &cur)) {
		printf("PH-FAIL fuzz: cannot read %s\n", path);
		return 1;
	}
	for (unsigned long long i = 0; i < iters; i++) {
		size_t n = gen(b, min, max);
		int ok = model(b, n, min, max, &want);
		int fd = open(path, O_WRONLY);
		ssize_t w;
		int err;

		if (fd < 0) {
			printf("PH-FAIL fuzz: cannot open %s\n", path);
			return 1;
		}
		w = write(fd, b, n);
		err = errno;
		close(fd);
		if (ok ? w != (ssize_t)n : (w >= 0 || err != EINVAL)) {
			printf("PH-FAIL fuzz %s: write of %zu bytes (", path, n);
			for (size_t k = 0; k < n; k++)
				printf("\\x%02x", b[k]);
			printf(") returned %zd errno %d, model says %s\n", w, w < 0 ? err : 0,
			       ok ? "accept" : "EINVAL");
			return 1;
		}
		if (read_value(path, &got) || got != (ok ? want : cur)) {
			printf("PH-FAIL fuzz %s: reads %llu after a write the model %s, want %llu\n",
			       path, got, ok ? "accepts" : "refuses", ok ? want : cur);
			return 1;
		}
		if (ok) {
			cur = want;
			accepted++;
		}
	}
	printf("PH-MARK fuzz %s %llu %llu\n", path, iters, accepted);
	return 0;
}
