// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * TCP payload bytes per cgroup and retransmits.
 *
 * Bytes are charged to the cgroup of the task making the call, which is the
 * task that owns the data. Two program sets do that; user space loads one:
 *
 *  - fentry/fexit (v5.5+): fexit/tcp_sendmsg runs in the sender's context and
 *    fentry/tcp_cleanup_rbuf in the reader's (tcp_recvmsg_locked() calls it
 *    with the number of bytes just copied out).
 *  - tp_btf/sock_send_length and sock_recv_length (v6.3+, commit
 *    6e6eda44b939 "sock: add tracepoint for send recv length"), for
 *    kernels that refuse BPF trampolines: some hardened or virtualised
 *    kernels return EPERM for every fentry program while BTF tracepoints
 *    still load. They fire for every socket, so they filter on TCP.
 *
 * Retransmits mostly fire from timers in softirq context, where "current" is
 * whoever was interrupted, so they are only counted in total.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "cgroup.bpf.h"
#include "maps.bpf.h"
#include "tcp.h"

/* Index into css_set::subsys of the hierarchy to report; -1 = v2 (dfl). */
const volatile int targ_cgroup_v1_subsys = -1;

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 4096);
	__type(key, u64);
	__type(value, struct tcp_cgroup_bytes);
} tcp_bytes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct tcp_totals);
} tcp_totals SEC(".maps");

static __always_inline u64 current_cgroup_id(void)
{
	/* The helper is the cheapest way when the answer is the v2 cgroup. */
	if (targ_cgroup_v1_subsys < 0)
		return bpf_get_current_cgroup_id();
	return task_cgroup_id(bpf_get_current_task_btf(),
			      targ_cgroup_v1_subsys);
}

/*
 * The entry of the current task's cgroup, or of the overflow key when the map
 * is full.
 *
 * fentry/fexit programs run with migration, not preemption, disabled; but a
 * tracing program never runs twice at once on one CPU (a second entry is
 * dropped and counted in recursion_misses), and sendmsg and recvmsg write
 * different fields, so the per-CPU read-modify-writes below cannot interleave.
 */
static __always_inline struct tcp_cgroup_bytes *current_entry(void)
{
	static const struct tcp_cgroup_bytes zero;
	u64 overflow = AUGUR_TCP_OVERFLOW_ID;
	u64 id = current_cgroup_id();
	struct tcp_cgroup_bytes *b;

	b = lookup_or_try_init(&tcp_bytes, &id, &zero);
	if (!b)
		b = bpf_map_lookup_elem(&tcp_bytes, &overflow);
	return b;
}

/*
 * Only the exit is traced: the return value is what was queued, which may be
 * less than the size asked for (non-blocking sockets, signals).
 */
SEC("fexit/tcp_sendmsg")
int BPF_PROG(tcp_sendmsg_exit, struct sock *sk, struct msghdr *msg,
	     size_t size, int ret)
{
	struct tcp_cgroup_bytes *b;

	if (ret <= 0)
		return 0;
	b = current_entry();
	if (b)
		b->sent += ret;
	return 0;
}

SEC("fentry/tcp_cleanup_rbuf")
int BPF_PROG(tcp_cleanup_rbuf, struct sock *sk, int copied)
{
	struct tcp_cgroup_bytes *b;

	if (copied <= 0)
		return 0;
	b = current_entry();
	if (b)
		b->received += copied;
	return 0;
}

/* Macros in the kernel, so not in vmlinux.h. */
#define MSG_PEEK 0x2
#define MSG_ERRQUEUE 0x2000
#define SOCK_STREAM 1
#define IPPROTO_TCP 6

static __always_inline bool is_tcp(const struct sock *sk)
{
	return sk && sk->sk_type == SOCK_STREAM &&
	       sk->sk_protocol == IPPROTO_TCP;
}

SEC("tp_btf/sock_send_length")
int BPF_PROG(sock_send_length, struct sock *sk, int ret, int flags)
{
	struct tcp_cgroup_bytes *b;

	if (ret <= 0 || !is_tcp(sk))
		return 0;
	b = current_entry();
	if (b)
		b->sent += ret;
	return 0;
}

SEC("tp_btf/sock_recv_length")
int BPF_PROG(sock_recv_length, struct sock *sk, int ret, int flags)
{
	struct tcp_cgroup_bytes *b;

	/* A peek leaves the data queued; the error queue is not payload. */
	if (ret <= 0 || (flags & (MSG_PEEK | MSG_ERRQUEUE)) || !is_tcp(sk))
		return 0;
	b = current_entry();
	if (b)
		b->received += ret;
	return 0;
}

SEC("tp_btf/tcp_retransmit_skb")
int BPF_PROG(tcp_retransmit_skb, const struct sock *sk,
	     const struct sk_buff *skb)
{
	struct tcp_totals *t;
	u32 zero = 0;

	t = bpf_map_lookup_elem(&tcp_totals, &zero);
	if (t)
		t->retransmits++;
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
