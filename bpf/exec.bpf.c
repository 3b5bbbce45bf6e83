// SPDX-License-Identifier: GPL-2.0
/*
 * Process lifecycle: exec, fork (new processes, not threads) and exit, on one ring buffer.
 *
 * Wakeup policy: an exec wakes the sensor at once (it wants /proc/PID/exe while the process
 * still lives); forks and exits are written without a wakeup and ride along with the next exec
 * or poll timeout, unless the backlog grows past `wakeup_backlog_bytes`. A wakeup per event
 * costs ~5 us, which a fork-heavy workload would feel.
 */
#include "common.bpf.h"
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

char LICENSE[] SEC("license") = "GPL";

/* Layout anchor: keep the shared record in this object's BTF for the contract test. */
const volatile struct proc_event nw_btf_proc_event;

/* Set by the loader. */
const volatile u32 wakeup_backlog_bytes = 256 * 1024;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 << 20); /* the loader sets the configured size */
} proc_events SEC(".maps");

static __always_inline struct proc_event *reserve_event(u32 kind, struct task_struct *task)
{
	struct proc_event *event = reserve_or_count(&proc_events, sizeof(*event),
						    NW_HEALTH_PROC_EVENTS_LOST);

	if (!event)
		return NULL;
	__builtin_memset(event, 0, sizeof(*event));
	event->kind = kind;
	event->timestamp_ns = bpf_ktime_get_ns();
	event->pid = task->tgid;
	event->ppid = task->real_parent->tgid;
	event->start_time_ns = task->start_time;
	bpf_probe_read_kernel_str(event->comm, sizeof(event->comm), task->comm);
	return event;
}

static __always_inline void submit_quietly(struct proc_event *event)
{
	u64 backlog = bpf_ringbuf_query(&proc_events, BPF_RB_AVAIL_DATA);

	bpf_ringbuf_submit(event, backlog >= wakeup_backlog_bytes ? BPF_RB_FORCE_WAKEUP
								    : BPF_RB_NO_WAKEUP);
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(tp_sched_process_exec, struct task_struct *task, pid_t old_pid,
	     struct linux_binprm *bprm)
{
	struct proc_event *event = reserve_event(NW_PROC_EXEC, task);

	if (!event)
		return 0;
	struct inode *exe = bprm->file->f_inode;

	event->exe_ino = exe->i_ino;
	event->exe_dev = exe->i_sb->s_dev;
	event->uid = (u32)bpf_get_current_uid_gid();
	bpf_probe_read_kernel_str(event->filename, sizeof(event->filename), bprm->filename);

	/* The new argv is already on the new stack: read it from user memory now, so a process
	 * that exits at once still has a command line. */
	struct mm_struct *mm = task->mm;
	unsigned long start = mm->arg_start, end = mm->arg_end;
	u32 len = end > start ? end - start : 0;

	if (len > NW_ARGS_LEN)
		len = NW_ARGS_LEN;
	if (bpf_probe_read_user(event->args, len, (void *)start) == 0)
		event->args_len = len;
	/* Forced: the adaptive default stays silent when an unread fork record precedes this
	 * one, and forks are always written without a wakeup. */
	bpf_ringbuf_submit(event, BPF_RB_FORCE_WAKEUP);
	return 0;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(tp_sched_process_fork, struct task_struct *parent, struct task_struct *child)
{
	if (child->pid != child->tgid)
		return 0; /* a new thread, not a new process */
	struct proc_event *event = reserve_event(NW_PROC_FORK, child);

	if (!event)
		return 0;
	struct inode *exe = child->mm->exe_file->f_inode;

	event->ppid = parent->tgid;
	event->exe_ino = exe->i_ino;
	event->exe_dev = exe->i_sb->s_dev;
	event->uid = (u32)bpf_get_current_uid_gid();
	submit_quietly(event);
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(tp_sched_process_exit, struct task_struct *task)
{
	if (task->pid != task->tgid)
		return 0; /* a thread ended; the process goes on */
	struct proc_event *event = reserve_event(NW_PROC_EXIT, task);

	if (event)
		submit_quietly(event);
	return 0;
}
