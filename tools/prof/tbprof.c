// SPDX-License-Identifier: GPL-2.0
/*
 * tbprof: a QEMU TCG plugin (plugin API version 1, QEMU 7.2) that counts
 * the guest instructions executed in each translation block, by the
 * block's first guest virtual address, and writes the counts out as
 * "ADDRESS COUNT" lines (hexadecimal, decimal):
 *
 *   - to OUT.N each time the guest executes the block at MARK (the N-th
 *     time, from 0): tools/guest/profmark's marker function;
 *   - to OUT when QEMU exits.
 *
 *   -plugin tbprof.so,arg=out=OUT,arg=mark=0xADDRESS
 *
 * The counts are inline additions in the translated code (no call per
 * block). A block that an exception or interrupt leaves early is counted
 * whole. Under -icount the instructions counted are those guest time is
 * made of. tools/profile.py builds and runs it.
 *
 * QEMU 7.2's Debian package ships no qemu-plugin.h: the few declarations
 * used are below, as that header has them.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef uint64_t qemu_plugin_id_t;
struct qemu_plugin_tb;
struct qemu_info_t;
typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);
typedef void (*qemu_plugin_udata_cb_t)(qemu_plugin_id_t id, void *userdata);
typedef void (*qemu_plugin_vcpu_udata_cb_t)(unsigned int vcpu_index, void *userdata);
enum qemu_plugin_op { QEMU_PLUGIN_INLINE_ADD_U64 };
enum qemu_plugin_cb_flags { QEMU_PLUGIN_CB_NO_REGS };

#define EXPORT __attribute__((visibility("default")))

void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_tb_trans_cb_t cb);
void qemu_plugin_register_vcpu_tb_exec_cb(struct qemu_plugin_tb *tb, qemu_plugin_vcpu_udata_cb_t cb,
					  enum qemu_plugin_cb_flags flags, void *userdata);
void qemu_plugin_register_vcpu_tb_exec_inline(struct qemu_plugin_tb *tb, enum qemu_plugin_op op,
					      void *ptr, uint64_t imm);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, qemu_plugin_udata_cb_t cb, void *userdata);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
uint64_t qemu_plugin_tb_vaddr(const struct qemu_plugin_tb *tb);

EXPORT int qemu_plugin_version = 1;

/* One translated block: its address, length and executed instructions. */
struct block {
	uint64_t vaddr;
	uint64_t insns;
	uint64_t count;
	struct block *next;
};

#define BUCKETS (1u << 20)
static struct block **table;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static const char *out = "tbprof.out";
static uint64_t mark;
static unsigned int marks;

static void dump(const char *path)
{
	FILE *f = fopen(path, "w");

	if (!f) {
		perror(path);
		return;
	}
	pthread_mutex_lock(&lock);
	for (unsigned int i = 0; i < BUCKETS; i++)
		for (struct block *b = table[i]; b; b = b->next)
			if (b->count)
				fprintf(f, "%" PRIx64 " %" PRIu64 "\n", b->vaddr, b->count);
	pthread_mutex_unlock(&lock);
	fclose(f);
}

static void on_mark(unsigned int vcpu, void *userdata)
{
	char path[4096];

	(void)vcpu;
	(void)userdata;
	snprintf(path, sizeof(path), "%s.%u", out, marks++);
	dump(path);
}

/*
 * A block is translated again after a TLB flush or code change: the same
 * address and length share one counter.
 */
static void translated(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
	uint64_t vaddr = qemu_plugin_tb_vaddr(tb), insns = qemu_plugin_tb_n_insns(tb);
	unsigned int h = (unsigned int)((vaddr * 0x9e3779b97f4a7c15ull) >> 44) & (BUCKETS - 1);
	struct block *b;

	(void)id;
	pthread_mutex_lock(&lock);
	for (b = table[h]; b; b = b->next)
		if (b->vaddr == vaddr && b->insns == insns)
			break;
	if (!b) {
		b = calloc(1, sizeof(*b));
		if (!b) {
			pthread_mutex_unlock(&lock);
			return;
		}
		b->vaddr = vaddr;
		b->insns = insns;
		b->next = table[h];
		table[h] = b;
	}
	pthread_mutex_unlock(&lock);
	qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &b->count, insns);
	if (mark && vaddr == mark)
		qemu_plugin_register_vcpu_tb_exec_cb(tb, on_mark, QEMU_PLUGIN_CB_NO_REGS, NULL);
}

static void at_exit(qemu_plugin_id_t id, void *userdata)
{
	(void)id;
	(void)userdata;
	dump(out);
}

EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const struct qemu_info_t *info, int argc,
			       char **argv)
{
	(void)info;
	for (int i = 0; i < argc; i++) {
		if (!strncmp(argv[i], "out=", 4))
			out = strdup(argv[i] + 4);
		else if (!strncmp(argv[i], "mark=", 5))
			mark = strtoull(argv[i] + 5, NULL, 0);
	}
	table = calloc(BUCKETS, sizeof(*table));
	if (!table)
		return -1;
	qemu_plugin_register_vcpu_tb_trans_cb(id, translated);
	qemu_plugin_register_atexit_cb(id, at_exit, NULL);
	return 0;
}
