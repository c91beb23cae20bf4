/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Log2 histograms shared by the BPF programs and user space.
 *
 * Bucket 0 counts the values 0 and 1; bucket b >= 1 counts [2^b, 2^(b+1)).
 * The last bucket also takes everything larger. Values are nanoseconds, so
 * 40 buckets reach 2^40 ns (~18 min); anything slower than that is one bucket
 * anyway. src/telemetry/log2_histogram.h turns these into quantiles and must
 * agree with this layout.
 *
 * Include vmlinux.h (BPF) or <linux/types.h> (user space) first.
 */
#ifndef AUGUR_BPF_LOG2_HIST_H_
#define AUGUR_BPF_LOG2_HIST_H_

#define AUGUR_LOG2_SLOTS 40

#endif /* AUGUR_BPF_LOG2_HIST_H_ */
