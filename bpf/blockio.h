/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Structs shared by blockio.bpf.c and its loader,
 * src/telemetry/bpf_blockio_collector.cc.
 *
 * Include vmlinux.h (BPF) or <linux/types.h> (user space) first.
 */
#ifndef AUGUR_BPF_BLOCKIO_H_
#define AUGUR_BPF_BLOCKIO_H_

#include "log2_hist.h"

/*
 * Devices are the kernel's internal dev_t (MINORBITS = 20), not the
 * user-space encoding of makedev(3).
 */
#define AUGUR_KDEV_MINORBITS 20
#define AUGUR_KDEV_MAJOR(dev) ((__u32)((dev) >> AUGUR_KDEV_MINORBITS))
#define AUGUR_KDEV_MINOR(dev) ((__u32)((dev) & ((1U << AUGUR_KDEV_MINORBITS) - 1)))

enum blockio_dir {
	BLOCKIO_READ = 0,
	BLOCKIO_WRITE = 1,
};

struct blockio_key {
	__u32 dev;	/* whole disk, kernel dev_t */
	__u32 dir;	/* enum blockio_dir */
};

/* io_stats[key], one copy per CPU (BPF_MAP_TYPE_PERCPU_HASH). */
struct blockio_stats {
	__u64 ios;		/* requests completed */
	__u64 bytes;		/* bytes completed, partial completions included */
	__u64 lat_sum_ns;	/* issue -> completion */
	__u64 lat_slots[AUGUR_LOG2_SLOTS];	/* log2_hist.h buckets of ns */
};

#endif /* AUGUR_BPF_BLOCKIO_H_ */
