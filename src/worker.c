// SPDX-License-Identifier: MIT
/*
 * Background workers: a thread that runs one round of work each time it is
 * kicked (and, optionally, every timeout_ms), woken through an eventfd so
 * that a kick is async-signal-safe (the fault path kicks from the SIGBUS
 * handler too).  The page-table resizer and the background reclaimer.
 */
#include "worker.h"

#include <poll.h>
#include <sys/eventfd.h>

static void *worker_main(void *arg)
{
	struct fl_worker *w = arg;
	struct pollfd pfd = {.fd = w->fd, .events = POLLIN};
	uint64_t v;

	while (!atomic_load(&w->stop)) {
		if (poll(&pfd, 1, w->timeout_ms) < 0 && errno != EINTR)
			break;
		if (read(w->fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
			break;
		/* Kicks from here on wake the next round. */
		atomic_store(&w->kicked, false);
		if (atomic_load(&w->stop))
			break;
		pthread_mutex_lock(&w->round_lock);
		if (!atomic_load(&w->stop))
			w->fn(w->arg);
		pthread_mutex_unlock(&w->round_lock);
	}
	return NULL;
}

/*
 * name: the thread's name (at most 15 characters), as top -H and perf show it.
 * Context: space creation.  Return: 0 or a negative errno.
 */
int worker_start(struct fl_worker *w, const char *name, void (*fn)(void *), void *arg,
		 int timeout_ms)
{
	int ret;

	w->fn = fn;
	w->arg = arg;
	w->timeout_ms = timeout_ms;
	atomic_init(&w->stop, false);
	atomic_init(&w->kicked, false);
	snprintf(w->name, sizeof(w->name), "%s", name);
	pthread_mutex_init(&w->round_lock, NULL);
	w->fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (w->fd < 0)
		return -errno;
	ret = pthread_create(&w->thread, NULL, worker_main, w);
	if (ret)
		return -ret;
	pthread_setname_np(w->thread, name);
	atomic_store(&w->started, true);
	return 0;
}

/* Context: any, including the SIGBUS handler; never blocks. */
void worker_kick(struct fl_worker *w)
{
	uint64_t one = 1;

	if (!atomic_load(&w->started) || atomic_exchange(&w->kicked, true))
		return;
	if (write(w->fd, &one, sizeof(one)) < 0)
		atomic_store(&w->kicked, false);
}

/*
 * Stop the thread and wait for it.  A kick may still come (it is not
 * served): the eventfd stays open until worker_stop().
 * Context: space teardown.  Idempotent.
 */
void worker_halt(struct fl_worker *w)
{
	uint64_t one = 1;

	if (atomic_load(&w->started)) {
		atomic_store(&w->stop, true);
		FL_BUG_ON(write(w->fd, &one, sizeof(one)) < 0);
		pthread_join(w->thread, NULL);
		atomic_store(&w->started, false);
	}
}

/* worker_halt(), and close the eventfd.  Context: space teardown; nobody
 * kicks any more.  Idempotent. */
void worker_stop(struct fl_worker *w)
{
	worker_halt(w);
	if (w->fd >= 0)
		close(w->fd);
	w->fd = -1;
}

/*
 * fork(): wait for the round in progress and keep the next from starting
 * (the thread waits for round_lock, holding nothing), until worker_resume()
 * in the parent or worker_fork_child() in the child.
 * Context: fork_space_prepare(), no faultline lock held.
 */
void worker_pause(struct fl_worker *w)
{
	if (w->started)
		pthread_mutex_lock(&w->round_lock);
}

void worker_resume(struct fl_worker *w)
{
	if (w->started)
		pthread_mutex_unlock(&w->round_lock);
}

/*
 * In the child of fork(), for a space the child does not get: the thread
 * is not there, and its eventfd (shared with the parent's worker) goes.
 * Context: fork_space_release(), the child's one thread.
 */
void worker_fork_release(struct fl_worker *w)
{
	static const pthread_mutex_t fresh = PTHREAD_MUTEX_INITIALIZER;

	if (!w->started)
		return;
	memcpy(&w->round_lock, &fresh, sizeof(fresh));
	if (w->fd >= 0)
		close(w->fd);
	w->fd = -1;
	w->started = false;
}

/*
 * In the child of fork(): the thread is not there.  A new one, with a new
 * eventfd (the old one is shared with the parent's worker: a kick would
 * wake it) and a fresh round_lock (the parent's thread held it, under
 * another thread id).  Return: 0 or a negative errno (not started).
 */
int worker_fork_child(struct fl_worker *w)
{
	char name[16];

	if (!w->started)
		return 0;
	worker_fork_release(w);
	memcpy(name, w->name, sizeof(name));
	return worker_start(w, name, w->fn, w->arg, w->timeout_ms);
}
