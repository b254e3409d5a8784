// SPDX-License-Identifier: MIT
/*
 * Thread delivery: the handler threads.  Each reads fault messages from the
 * space's userfaultfd and calls fl_handle_fault() for them.  One of them may
 * read the page of its batch's last fault itself (sleeping on that I/O)
 * while another handler is free (fault_sleep(), cont.c); nothing else they
 * do sleeps on I/O.  They stop when the space's eventfd fires.  Pinned
 * handlers (FAULTLINE_HANDLER_PIN) and the poll after a round are described
 * at handler_main() and poll_for_faults().
 */
#include "uffd.h"

#include <sched.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cont.h"
#include "fault.h"
#include "space.h"
#include "touchlog.h"
#include "uffd_compat.h"

/* Thread delivery: the last SIGSEGV answer per faulting thread (a hash of
 * it), shared by the handler threads; racy by design, relaxed atomics. */
static void segv_verdict(struct fl_space *sp, pid_t tid, unsigned long addr)
{
	unsigned int slot = (unsigned int)tid % SEGV_SLOTS;
	unsigned int seq = atomic_load_explicit(&sp->mmap_lock.mm_lock_seq, memory_order_acquire);

	if (READ_ONCE(sp->segv_tid[slot]) == tid && READ_ONCE(sp->segv_addr[slot]) == addr &&
	    READ_ONCE(sp->segv_seq[slot]) == seq) {
		WRITE_ONCE(sp->segv_tid[slot], 0);
		uffd_segv_log(sp, tid, addr);
		syscall(SYS_tgkill, getpid(), tid, SIGSEGV);
		return;
	}
	WRITE_ONCE(sp->segv_addr[slot], addr);
	WRITE_ONCE(sp->segv_seq[slot], seq);
	WRITE_ONCE(sp->segv_tid[slot], tid);
}

#define UFFD_MSG_BATCH 16
/* A polling round ends this long after it began, whatever it found, so
 * that fork's write lock of handler_gate waits no longer than that. */
#define POLL_ROUND_MAX_NS 200000ULL
/* A thread counts as faulting if one of its faults was served this lately. */
#define FAULT_TID_RECENT_NS 2000000ULL

/* An entry of fault_tids younger than this is not refreshed: the window
 * read is FAULT_TID_RECENT_NS, and a store on every fault would pass the
 * array's cache lines between the handlers' CPUs once a fault. */
#define FAULT_TID_REFRESH_NS 100000ULL

/* Note that thread tid faulted at now.  Context: a handler thread. */
static void fault_tid_note(struct fl_space *sp, pid_t tid, uint64_t now)
{
	unsigned int oldest = 0;
	uint64_t oldest_ns = UINT64_MAX;

	for (unsigned int i = 0; i < ARRAY_SIZE(sp->fault_tids); i++) {
		uint64_t ns = atomic_load_explicit(&sp->fault_tids[i].ns, memory_order_relaxed);
		if (atomic_load_explicit(&sp->fault_tids[i].tid, memory_order_relaxed) == tid) {
			if ((int64_t)(now - ns) < (int64_t)FAULT_TID_REFRESH_NS)
				return;
			oldest = i;
			break;
		}
		if (ns < oldest_ns) {
			oldest_ns = ns;
			oldest = i;
		}
	}
	atomic_store_explicit(&sp->fault_tids[oldest].tid, tid, memory_order_relaxed);
	atomic_store_explicit(&sp->fault_tids[oldest].ns, now, memory_order_relaxed);
}

/* The threads whose faults were served in the last FAULT_TID_RECENT_NS, up
 * to the size of fault_tids. */
static unsigned int recent_faulters(struct fl_space *sp, uint64_t now)
{
	unsigned int faulting = 0;

	/* Signed: another handler may have stored a time later than now. */
	for (unsigned int i = 0; i < ARRAY_SIZE(sp->fault_tids); i++)
		faulting += (int64_t)(now - atomic_load_explicit(&sp->fault_tids[i].ns,
								 memory_order_relaxed)) <
			    (int64_t)FAULT_TID_RECENT_NS;
	return faulting;
}

/*
 * Whether a handler may poll for the next fault: fewer threads faulted
 * lately than there are CPUs, so that the poller takes a CPU no faulting
 * thread would use.  (With as many faulting threads as CPUs a poll only
 * delays them: measured, BENCHMARKS.md, "Compressed swap".)  fault_tids
 * counts at most its size in threads: with more CPUs than that, every
 * entry recent means as many threads as it can tell, and no poll.
 */
static bool may_poll(struct fl_space *sp, uint64_t now)
{
	return recent_faulters(sp, now) <
	       MIN(sp->online_cpus, (unsigned int)ARRAY_SIZE(sp->fault_tids));
}

/*
 * The kernel may report one access twice.  A thread asleep in
 * handle_userfault() can be woken before its page is there (the kernel
 * allows it; here most likely a futex wake-up for a lock the thread waited
 * on before, delivered late from a wake queue); it faults again and queues
 * a second message.  If a handler has read the first by then, both are
 * served: the second usually finds the page present and lets it be.  But a
 * handler that read it, and then lost its CPU, may come to it after the
 * thread has gone on and paged the page out (MADV_PAGEOUT: seen in
 * test_pageout and test_tier_redis); it would read the page back in for
 * nobody.  A message the kernel no longer waits on was read before the
 * install that woke its thread (unread, it leaves the queue with the
 * thread), so before any eviction of that page since: msg_epoch() taken
 * before the read, and a page with a later eviction stamp, tell it apart
 * (fault_msg_stale(), fault.c).
 */
static uint32_t msg_epoch(struct fl_space *sp)
{
	return (uint32_t)atomic_load(&sp->evictions);
}

/* Serve the count fault messages of msg, read after msg_epoch() gave
 * epoch.  Context: a handler thread, handler_gate held for read. */
static void serve_msgs(struct fl_space *sp, const struct uffd_msg *msg, size_t count,
		       uint32_t epoch)
{
	uint64_t now = fl_now_ns();

	for (size_t i = 0; i < count; i++) {
		if (msg[i].event != UFFD_EVENT_PAGEFAULT)
			continue;
		unsigned int flags = 0;
		if (msg[i].arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WRITE)
			flags |= FAULT_FLAG_WRITE;
		if (msg[i].arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WP)
			flags |= FAULT_FLAG_WRITE | FAULT_FLAG_WP;
		/* The last message of the batch: nothing waits behind it on
		 * this thread, it may read its page itself. */
		if (i + 1 == count)
			flags |= FAULT_FLAG_MAY_SYNC;
		unsigned long addr = (unsigned long)msg[i].arg.pagefault.address;
		pid_t tid = (pid_t)msg[i].arg.pagefault.feat.ptid;
		touch_fault_tid = tid;
		fault_tid_note(sp, tid, now);
		if (fl_handle_fault_msg(sp, addr, flags | FAULT_FLAG_MSG, epoch) & VM_FAULT_SIGSEGV)
			segv_verdict(sp, tid, addr & PAGE_MASK);
	}
}

/* Store I/Os started so far (reads and writes): a round that started one
 * is not followed by a poll. */
static uint64_t store_ios(struct fl_space *sp)
{
	return sp->swap_on ? atomic_load_explicit(&sp->dev.inflight_samples, memory_order_relaxed)
			   : 0;
}

/* Whether a round that began with ios0 store I/Os may be followed by a
 * poll (and, pinned, by a sleep on this CPU): it started none, and
 * may_poll(). */
static bool round_may_poll(struct fl_space *sp, uint64_t ios0)
{
	return store_ios(sp) == ios0 && may_poll(sp, fl_now_ns());
}

/*
 * After a round, poll the userfaultfd for cfg.handler_spin_us before going
 * back to sleep, serving what comes: a fault served so needs no wake-up of
 * a handler (an IPI and a vCPU's exit from idle, in a VM: most of a
 * thread-delivery miss's cost).  Only after a round that started no store
 * I/O (ios0: store_ios() before it): a fault that waits for a read does
 * not fault again within the poll, and the poll would only burn the CPU
 * (measured on the disk store).  One handler polls at a time, and only
 * while may_poll().  Context: a handler thread, handler_gate held for read.
 */
static void poll_for_faults(struct fl_space *sp, struct uffd_msg *msg, size_t cap, uint64_t ios0)
{
	uint64_t spin = (uint64_t)sp->cfg.handler_spin_us * 1000, start, last, now;
	bool idle = false;

	if (!spin || sp->cfg.delivery != FL_DELIVERY_THREAD || !round_may_poll(sp, ios0) ||
	    !atomic_compare_exchange_strong(&sp->handler_polling, &idle, true))
		return;
	start = last = fl_now_ns();
	for (now = start; now - last < spin && now - start < POLL_ROUND_MAX_NS &&
			  !atomic_load_explicit(&sp->dying, memory_order_relaxed);
	     now = fl_now_ns()) {
		uint32_t epoch = msg_epoch(sp);
		ssize_t n = read(sp->uffd, msg, cap * sizeof(*msg));
		if (n > 0) {
			count_event_n(sp, faults_polled, (size_t)n / sizeof(*msg));
			serve_msgs(sp, msg, (size_t)n / sizeof(*msg), epoch);
			last = fl_now_ns();
			if (!round_may_poll(sp, ios0))
				break;
		} else {
			sched_yield();
		}
	}
	atomic_store(&sp->handler_polling, false);
}

/* Add the userfaultfd, stop_fd and retry_fd to the epoll set ep; the
 * userfaultfd EPOLLEXCLUSIVE when excl. */
static void handler_epoll_add(struct fl_space *sp, int ep, bool excl)
{
	struct epoll_event ev;

	ev = (struct epoll_event){.events = EPOLLIN | (excl ? EPOLLEXCLUSIVE : 0), .data.u32 = 0};
	FL_BUG_ON(epoll_ctl(ep, EPOLL_CTL_ADD, sp->uffd, &ev));
	ev = (struct epoll_event){.events = EPOLLIN, .data.u32 = 1};
	FL_BUG_ON(epoll_ctl(ep, EPOLL_CTL_ADD, sp->stop_fd, &ev));
	ev = (struct epoll_event){.events = EPOLLIN | EPOLLEXCLUSIVE, .data.u32 = 2};
	FL_BUG_ON(epoll_ctl(ep, EPOLL_CTL_ADD, sp->retry_fd, &ev));
}

/*
 * Pin the calling handler h to its CPU in SCHED_BATCH, or let it run on any
 * CPU of the process's set again in SCHED_OTHER.  Pinned handlers are woken
 * by every fault message: in SCHED_BATCH a woken one does not preempt the
 * thread running on its CPU (a thread of the application, faulting or not)
 * but runs when that thread sleeps or its slice ends, at the same weight
 * (so it is never starved, as a lower priority would be).  Both are
 * allowed without privilege.  A CPU gone offline since: it runs where it
 * can.
 */
static void handler_pin(struct fl_handler *h, bool pin)
{
	cpu_set_t one, *set = &h->sp->handler_cpuset;
	struct sched_param prio = {.sched_priority = 0};

	if (pin) {
		CPU_ZERO(&one);
		CPU_SET(h->cpu, &one);
		set = &one;
	}
	if (pthread_setaffinity_np(pthread_self(), sizeof(*set), set))
		fl_log("handler thread: CPU %d: cannot %s", h->cpu, pin ? "pin" : "unpin");
	if (sched_setscheduler(0, pin ? SCHED_BATCH : SCHED_OTHER, &prio))
		fl_log("handler thread: cannot set %s: %s", pin ? "SCHED_BATCH" : "SCHED_OTHER",
		       strerror(errno));
}

/*
 * A handler thread.  Each has its own epoll set, h->ep, with the
 * userfaultfd added EPOLLEXCLUSIVE, so that a fault message wakes one
 * handler, not all; a wake-up costs epoll_wait and one read of up to
 * UFFD_MSG_BATCH messages.
 *
 * Pinned handlers (FAULTLINE_HANDLER_PIN: h->cpu >= 0, one on each CPU)
 * have a second set, h->ep_all, with the userfaultfd added without it, so
 * that a message wakes each handler asleep there.  After a round that
 * started no store I/O, a handler pins itself to its CPU in SCHED_BATCH
 * (handler_pin()) and sleeps there: the handler on a faulting thread's CPU
 * runs as soon as that thread sleeps, reads the message first as a rule,
 * its UFFDIO_COPY wakes the thread on its own CPU, and (may_poll()) it
 * polls beside it; no wake-up crosses CPUs.  The others wait for their
 * CPU's thread to sleep or use up its slice, without preempting it, and
 * find nothing as a rule (handler_wakeups_empty).  After a round that
 * started store I/O it goes back to every CPU of the process
 * (handler_cpuset) and SCHED_OTHER, and sleeps in h->ep, one wake-up a
 * message, as unpinned handlers do: a fault that waits for a read does not
 * fault again soon, and a handler held to one CPU could not serve the
 * next while its thread runs there.  A set with no sleeper only queues
 * the event.
 */
static void *handler_main(void *arg)
{
	struct fl_handler *h = arg;
	struct fl_space *sp = h->sp;
	struct uffd_msg msg[UFFD_MSG_BATCH];
	struct epoll_event ev[3];
	bool all = h->ep_all >= 0;
	uint64_t v, ios0;

	if (all)
		handler_pin(h, true);
	handler_epoll_add(sp, h->ep, true);
	if (h->ep_all >= 0)
		handler_epoll_add(sp, h->ep_all, false);

	while (!atomic_load(&sp->dying)) {
		int nev = epoll_wait(all ? h->ep_all : h->ep, ev, 3, -1);

		if (nev < 0) {
			if (errno == EINTR)
				continue;
			fl_log("epoll_wait: %s; handler thread stops", strerror(errno));
			break;
		}
		pthread_rwlock_rdlock(&sp->handler_gate);
		ios0 = store_ios(sp);
		for (int e = 0; e < nev; e++) {
			if (ev[e].data.u32 == 2) {
				/* Retries of faults whose I/O completed. */
				if (read(sp->retry_fd, &v, sizeof(v)) > 0)
					run_retry_queue(sp);
				continue;
			}
			if (ev[e].data.u32 != 0)
				continue; /* stop_fd: the loop condition sees it */
			/*
			 * Pinned handlers of a space with the compressed tier,
			 * or with no store, read one message at a time (up to a
			 * batch), so that another CPU's handler, woken by the
			 * same messages, serves its own CPU's faults meanwhile
			 * rather than idle (on the disk store alone it did not
			 * help: BENCHMARKS.md).  None after a message read in
			 * this thread (sync_read_get()) or that started store
			 * I/O: the next would wait for it.  Nor when one thread
			 * alone faulted lately: its next fault cannot be there
			 * yet, and the read would find nothing (a system call
			 * a fault, measured).
			 */
			bool one = all && (sp->tier || !sp->swap_on);
			size_t len = one ? sizeof(msg[0]) : sizeof(msg);
			for (unsigned int k = 0; k < UFFD_MSG_BATCH; k++) {
				uint32_t epoch = msg_epoch(sp);
				ssize_t n = read(sp->uffd, msg, len);
				if (n < 0) {
					if (errno == EAGAIN && !k)
						count_event(sp, handler_wakeups_empty);
					if (errno == EAGAIN || errno == EINTR)
						break;
					fl_log("userfaultfd read: %s; handler thread stops",
					       strerror(errno));
					pthread_rwlock_unlock(&sp->handler_gate);
					goto out;
				}
				unsigned long syncs = sync_reads_taken;

				if (one)
					count_event(sp, handler_msgs_one);
				serve_msgs(sp, msg, (size_t)n / sizeof(msg[0]), epoch);
				if (!one || store_ios(sp) != ios0 || sync_reads_taken != syncs ||
				    recent_faulters(sp, fl_now_ns()) < 2)
					break;
			}
		}
		poll_for_faults(sp, msg, UFFD_MSG_BATCH, ios0);
		if (h->ep_all >= 0) {
			bool want = store_ios(sp) == ios0;

			if (want != all)
				handler_pin(h, want);
			all = want;
		}
		pthread_rwlock_unlock(&sp->handler_gate);
	}
out:
	return NULL;
}

static void handler_gate_init(struct fl_space *sp)
{
	pthread_rwlockattr_t a;

	pthread_rwlockattr_init(&a);
	pthread_rwlockattr_setkind_np(&a, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&sp->handler_gate, &a);
	pthread_rwlockattr_destroy(&a);
}

/*
 * FAULTLINE_HANDLER_PIN: the CPUs this thread may run on into cpus, when
 * they are at most cfg.handler_pin (and max), and at least one handler for
 * each.  Return: how many; 0 when handlers are not pinned (the option is 0,
 * more CPUs, or the set cannot be read).
 */
static unsigned int handler_cpus(struct fl_space *sp, int *cpus, unsigned int max)
{
	cpu_set_t *set = &sp->handler_cpuset;
	unsigned int n = 0;

	if (!sp->cfg.handler_pin || sched_getaffinity(0, sizeof(*set), set) ||
	    (unsigned int)CPU_COUNT(set) > MIN(sp->cfg.handler_pin, max))
		return 0;
	for (int c = 0; c < CPU_SETSIZE && n < max; c++)
		if (CPU_ISSET(c, set))
			cpus[n++] = c;
	if (sp->cfg.handlers < n)
		sp->cfg.handlers = n;
	return n;
}

int uffd_start_handlers(struct fl_space *sp)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	int pin[64];
	unsigned int npin;

	sp->online_cpus = cpus > 0 ? (unsigned int)cpus : 1;
	npin = handler_cpus(sp, pin, ARRAY_SIZE(pin));
	handler_gate_init(sp);
	sp->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (sp->stop_fd < 0)
		return -errno;
	sp->handlers = calloc(sp->cfg.handlers, sizeof(*sp->handlers));
	if (!sp->handlers)
		return -ENOMEM;
	for (unsigned int i = 0; i < sp->cfg.handlers; i++) {
		struct fl_handler *h = &sp->handlers[i];
		char name[16];
		int ret;

		h->sp = sp;
		h->cpu = npin ? pin[i % npin] : -1;
		h->ep_all = -1;
		h->ep = epoll_create1(EPOLL_CLOEXEC);
		if (h->ep < 0)
			return -errno;
		if (h->cpu >= 0) {
			h->ep_all = epoll_create1(EPOLL_CLOEXEC);
			if (h->ep_all < 0) {
				ret = -errno;
				close(h->ep);
				return ret;
			}
		}
		ret = pthread_create(&h->thread, NULL, handler_main, h);
		if (ret) {
			close(h->ep);
			if (h->ep_all >= 0)
				close(h->ep_all);
			return -ret;
		}
		/* handlers <= 64; the modulo shows the compiler it fits */
		snprintf(name, sizeof(name), "fl-handler/%u", i % 1000);
		pthread_setname_np(h->thread, name);
		sp->nr_handlers++;
	}
	return 0;
}

/* The handler threads' epoll sets closed, and the array freed.  Context:
 * the threads are gone (joined, or not in this child of fork()). */
static void handlers_free(struct fl_space *sp)
{
	for (unsigned int i = 0; i < sp->nr_handlers; i++) {
		close(sp->handlers[i].ep);
		if (sp->handlers[i].ep_all >= 0)
			close(sp->handlers[i].ep_all);
	}
	sp->nr_handlers = 0;
	free(sp->handlers);
	sp->handlers = NULL;
}

/*
 * fork(): every handler thread between two rounds, none starting another
 * until uffd_handlers_resume() (the parent) or uffd_handlers_fork_child()
 * (the child).  Context: fork_space_prepare(), no faultline lock held.
 */
void uffd_handlers_pause(struct fl_space *sp)
{
	if (sp->nr_handlers)
		pthread_rwlock_wrlock(&sp->handler_gate);
}

void uffd_handlers_resume(struct fl_space *sp)
{
	if (sp->nr_handlers)
		pthread_rwlock_unlock(&sp->handler_gate);
}

/*
 * In the child of fork(): the handler threads are not there, and the
 * eventfds and epoll sets are shared with the parent's.  New ones, and new
 * threads on the child's userfaultfd (already open: fork_space_child()).
 * Return: 0 or a negative errno.
 */
int uffd_handlers_fork_child(struct fl_space *sp)
{
	unsigned int n = sp->nr_handlers;

	if (!n)
		return 0;
	handlers_free(sp);
	if (sp->stop_fd >= 0)
		close(sp->stop_fd);
	sp->stop_fd = -1;
	return uffd_start_handlers(sp);
}

/*
 * In the child of fork(), for a space the child does not get: the handler
 * threads are not there; their epoll sets go (the eventfds are
 * fork_space_release()'s).  Context: the child's one thread.
 */
void uffd_handlers_fork_release(struct fl_space *sp)
{
	handlers_free(sp);
}

/* Context: space teardown; also for a partly started set of handlers. */
void uffd_stop_handlers(struct fl_space *sp)
{
	uint64_t one = 1;

	atomic_store(&sp->dying, true);
	if (sp->stop_fd >= 0 && sp->nr_handlers) {
		ssize_t r = write(sp->stop_fd, &one, sizeof(one));
		(void)r;
	}
	for (unsigned int i = 0; i < sp->nr_handlers; i++)
		pthread_join(sp->handlers[i].thread, NULL);
	handlers_free(sp);
	if (sp->stop_fd >= 0)
		close(sp->stop_fd);
	sp->stop_fd = -1;
}
