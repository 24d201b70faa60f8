// SPDX-License-Identifier: GPL-2.0
/*
 * stress: integrity stress for free page hinting. One thread per CPU keeps
 * a set of anonymous mappings, stamps every page it maps with a pattern
 * derived from (address, generation), and at random unmaps a mapping and
 * maps a new one, verifying every page of the old one first and, every so
 * often, every live page it holds. A page that the host discarded while the
 * guest used it reads back as zeroes (or anything but its stamp) and fails
 * the run with its address.
 *
 *   stress OPS [LIVE_MIB]      OPS unmap/map operations per thread (a fixed
 *                              amount of work), about LIVE_MIB (default 128)
 *                              mapped at any time over all threads
 *
 * Prints "PH-MARK stress-done <pages stamped> <pages verified> <frees>" or
 * "PH-FAIL integrity: ..." and exits 1.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define PAGE 4096UL
#define SLOTS 64
#define WORDS_PER_PAGE 4

struct slot {
	uint64_t *p;
	unsigned long pages;
	uint64_t gen;
};

struct worker {
	pthread_t th;
	unsigned int id;
	unsigned long ops, max_pages;
	uint64_t rng;
	struct slot slots[SLOTS];
	unsigned long stamped, verified, frees;
};

static volatile int failed;

static uint64_t next(uint64_t *s)
{
	/* xorshift64* */
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ULL;
}

static uint64_t stamp(const void *addr, uint64_t gen, unsigned int w)
{
	uint64_t x = (uint64_t)(uintptr_t)addr ^ (gen << 40) ^ ((uint64_t)w << 60);

	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	return x | 1; /* never zero, so a discarded page cannot match */
}

/* Word offsets stamped in each page: first, last and two in between. */
static const unsigned int offs[WORDS_PER_PAGE] = { 0, 128, 300, 511 };

static void map_slot(struct worker *w, struct slot *s)
{
	unsigned long pages = 1 + next(&w->rng) % w->max_pages;
	size_t len = pages * PAGE;
	uint64_t *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED) {
		s->p = NULL;
		return;
	}
	/* Half the mappings are small pages, half may be THP-backed. */
	madvise(p, len, (next(&w->rng) & 1) ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
	s->p = p;
	s->pages = pages;
	s->gen++;
	for (unsigned long i = 0; i < pages; i++) {
		uint64_t *pg = p + i * (PAGE / 8);

		for (unsigned int k = 0; k < WORDS_PER_PAGE; k++)
			pg[offs[k]] = stamp(&pg[offs[k]], s->gen, k);
	}
	w->stamped += pages;
}

static int verify_slot(struct worker *w, struct slot *s)
{
	if (!s->p)
		return 0;
	for (unsigned long i = 0; i < s->pages; i++) {
		uint64_t *pg = s->p + i * (PAGE / 8);

		for (unsigned int k = 0; k < WORDS_PER_PAGE; k++) {
			uint64_t want = stamp(&pg[offs[k]], s->gen, k), got = pg[offs[k]];

			if (got != want) {
				printf("PH-FAIL integrity: thread %u page %p word %u: got %#llx, want %#llx%s\n",
				       w->id, (void *)pg, offs[k], (unsigned long long)got,
				       (unsigned long long)want, got ? "" : " (zeroed: the host discarded it)");
				fflush(stdout);
				failed = 1;
				return -1;
			}
		}
	}
	w->verified += s->pages;
	return 0;
}

static void *run(void *arg)
{
	struct worker *w = arg;

	for (unsigned int i = 0; i < SLOTS; i++)
		map_slot(w, &w->slots[i]);
	for (unsigned long op = 0; op < w->ops && !failed; op++) {
		struct slot *s = &w->slots[next(&w->rng) % SLOTS];

		if (verify_slot(w, s))
			break;
		if (s->p) {
			munmap(s->p, s->pages * PAGE);
			w->frees += s->pages;
		}
		map_slot(w, s);
		if (op % 256 == 255)
			for (unsigned int i = 0; i < SLOTS && !failed; i++)
				if (verify_slot(w, &w->slots[i]))
					break;
	}
	for (unsigned int i = 0; i < SLOTS && !failed; i++)
		if (!verify_slot(w, &w->slots[i]) && w->slots[i].p) {
			munmap(w->slots[i].p, w->slots[i].pages * PAGE);
			w->frees += w->slots[i].pages;
		}
	return NULL;
}

int main(int argc, char **argv)
{
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned long ops, live_mib, stamped = 0, verified = 0, frees = 0;
	struct worker *ws;

	if (argc < 2) {
		fprintf(stderr, "usage: stress OPS [LIVE_MIB]\n");
		return 2;
	}
	ops = strtoul(argv[1], NULL, 0);
	live_mib = argc > 2 ? strtoul(argv[2], NULL, 0) : 128;
	if (ncpu < 1)
		ncpu = 1;
	ws = calloc(ncpu, sizeof(*ws));
	if (!ws)
		return 2;
	for (long i = 0; i < ncpu; i++) {
		ws[i].id = i;
		ws[i].ops = ops;
		/* Mean mapping size: live / threads / slots, times two. */
		ws[i].max_pages = 2 * (live_mib << 20) / PAGE / ncpu / SLOTS;
		if (!ws[i].max_pages)
			ws[i].max_pages = 1;
		ws[i].rng = 0x9e3779b97f4a7c15ULL * (i + 1);
		pthread_create(&ws[i].th, NULL, run, &ws[i]);
	}
	for (long i = 0; i < ncpu; i++) {
		pthread_join(ws[i].th, NULL);
		stamped += ws[i].stamped;
		verified += ws[i].verified;
		frees += ws[i].frees;
	}
	if (failed)
		return 1;
	printf("PH-MARK stress-done %lu %lu %lu\n", stamped, verified, frees);
	return 0;
}
