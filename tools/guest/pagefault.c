// SPDX-License-Identifier: GPL-2.0
/*
 * pagefault: a page_fault1-style loop (after will-it-scale) for the cost of
 * the page free path. TASKS processes each map 128 MiB of anonymous memory
 * in 4 KiB pages (no THP), write every page, unmap it, and again, for a
 * fixed time: every page is allocated and freed once per round, so every
 * free goes through the free page hint.
 *
 *   pagefault SECONDS [TASKS]      (default: two per CPU)
 *
 * Prints "PH-MARK pf-start" and "PH-MARK pf-result <faults/s> <faults>".
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096UL
#define SIZE (128UL << 20)

static volatile sig_atomic_t stop;

static void on_term(int sig)
{
	(void)sig;
	stop = 1;
}

/* One task: counts pages touched until SIGTERM, then writes the count. */
static void task(int fd)
{
	unsigned long faults = 0;

	while (!stop) {
		char *p = mmap(NULL, SIZE, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (p == MAP_FAILED)
			_exit(2);
		madvise(p, SIZE, MADV_NOHUGEPAGE);
		for (unsigned long off = 0; off < SIZE && !stop; off += PAGE) {
			p[off] = 1;
			faults++;
		}
		munmap(p, SIZE);
	}
	if (write(fd, &faults, sizeof(faults)) != sizeof(faults))
		_exit(2);
	_exit(0);
}

int main(int argc, char **argv)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned long secs, total = 0;
	struct timespec a, b;
	int fds[2], tasks;
	pid_t *pids;
	double dt;

	if (argc < 2) {
		fprintf(stderr, "usage: pagefault SECONDS [TASKS]\n");
		return 2;
	}
	secs = strtoul(argv[1], NULL, 0);
	tasks = argc > 2 ? atoi(argv[2]) : 2 * (cpus > 0 ? cpus : 1);
	pids = calloc(tasks, sizeof(*pids));
	if (!pids || pipe(fds))
		return 2;
	/* Before the fork: a task signalled early still writes its count. */
	signal(SIGTERM, on_term);
	printf("PH-MARK pf-start %d\n", tasks);
	fflush(stdout);
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (int i = 0; i < tasks; i++) {
		pids[i] = fork();
		if (pids[i] == 0)
			task(fds[1]);
		if (pids[i] < 0)
			return 2;
	}
	sleep(secs);
	for (int i = 0; i < tasks; i++)
		kill(pids[i], SIGTERM);
	clock_gettime(CLOCK_MONOTONIC, &b);
	for (int i = 0; i < tasks; i++) {
		unsigned long n;
		int st;

		if (read(fds[0], &n, sizeof(n)) != sizeof(n))
			return 2;
		total += n;
		waitpid(pids[i], &st, 0);
	}
	dt = (b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9;
	printf("PH-MARK pf-result %.0f %lu\n", total / dt, total);
	return 0;
}
