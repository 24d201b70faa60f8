// SPDX-License-Identifier: GPL-2.0
/*
 * churn: the guest's own throughput under steady allocate/free churn, for
 * the benchmark. One thread per CPU keeps a working set of THP-backed
 * anonymous mappings (2, 4 or 6 MiB each) and, for a fixed time, replaces
 * one at random: unmap it, map a new one, write every 4 KiB page of it. Memory
 * that the guest frees is reused at once, so eager reporting makes the host
 * fault it in again: the figure shows what that costs.
 *
 *   churn SECONDS [WORKING_SET_MIB]    (default 256 MiB over all threads)
 *
 * Prints "PH-MARK churn-start" and "PH-MARK churn-result <MiB/s> <MiB>".
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096UL
#define MIB (1UL << 20)
#define MAX_SLOTS 256

struct worker {
	pthread_t th;
	uint64_t rng;
	int slots;
	char *p[MAX_SLOTS];
	unsigned long len[MAX_SLOTS];
	unsigned long touched_mib;
};

static volatile int stop;
static pthread_barrier_t ready;

static uint64_t next(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ULL;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static char *map_touch(unsigned long len)
{
	char *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED) {
		perror("churn: mmap");
		exit(2);
	}
	madvise(p, len, MADV_HUGEPAGE);
	for (unsigned long off = 0; off < len; off += PAGE)
		p[off] = 1;
	return p;
}

/* 2, 4 or 6 MiB: 4 MiB on average. */
static unsigned long pick(struct worker *w)
{
	return 2 * (1 + next(&w->rng) % 3) * MIB;
}

static void *run(void *arg)
{
	struct worker *w = arg;

	for (int i = 0; i < w->slots; i++) {
		w->len[i] = pick(w);
		w->p[i] = map_touch(w->len[i]);
	}
	pthread_barrier_wait(&ready);
	while (!stop) {
		int i = next(&w->rng) % w->slots;

		munmap(w->p[i], w->len[i]);
		w->len[i] = pick(w);
		w->p[i] = map_touch(w->len[i]);
		w->touched_mib += w->len[i] / MIB;
	}
	for (int i = 0; i < w->slots; i++)
		munmap(w->p[i], w->len[i]);
	return NULL;
}

int main(int argc, char **argv)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned long secs, ws, total = 0;
	struct worker *w;
	double t0, t1;

	if (argc < 2) {
		fprintf(stderr, "usage: churn SECONDS [WORKING_SET_MIB]\n");
		return 2;
	}
	secs = strtoul(argv[1], NULL, 0);
	ws = argc > 2 ? strtoul(argv[2], NULL, 0) : 256;
	if (cpus < 1)
		cpus = 1;
	w = calloc(cpus, sizeof(*w));
	if (!w)
		return 2;
	pthread_barrier_init(&ready, NULL, cpus + 1);
	for (long i = 0; i < cpus; i++) {
		w[i].rng = 0x9e3779b97f4a7c15ULL * (i + 1);
		/* 4 MiB a mapping on average: the working set is about ws */
		w[i].slots = ws / cpus / 4;
		if (w[i].slots < 1)
			w[i].slots = 1;
		if (w[i].slots > MAX_SLOTS)
			w[i].slots = MAX_SLOTS;
		if (pthread_create(&w[i].th, NULL, run, &w[i]))
			return 2;
	}
	pthread_barrier_wait(&ready);
	printf("PH-MARK churn-start %lu\n", ws);
	fflush(stdout);
	t0 = now();
	sleep(secs);
	stop = 1;
	t1 = now();
	for (long i = 0; i < cpus; i++) {
		pthread_join(w[i].th, NULL);
		total += w[i].touched_mib;
	}
	printf("PH-MARK churn-result %.1f %lu\n", total / (t1 - t0), total);
	return 0;
}
