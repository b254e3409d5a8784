/* SPDX-License-Identifier: MIT */
/*
 * Background workers (worker.c): a thread that runs one round of work each
 * time it is kicked, and optionally every timeout_ms.  The page-table
 * resizer and kswapd.
 */
#ifndef FL_WORKER_H
#define FL_WORKER_H

#include "lib.h"

struct fl_worker {
	pthread_t thread;
	int fd;		      /* eventfd: a kick */
	_Atomic bool started; /* read by worker_kick() at any time */
	char name[16];
	/* Held by the thread for each round: worker_pause() (fork) waits for
	 * the round in progress and keeps the next from starting. */
	pthread_mutex_t round_lock;
	_Atomic bool stop, kicked;
	void (*fn)(void *arg); /* one round of work per wake-up */
	void *arg;
	int timeout_ms; /* also a round this often; -1: only when kicked */
};

int worker_start(struct fl_worker *w, const char *name, void (*fn)(void *), void *arg,
		 int timeout_ms);
void worker_kick(struct fl_worker *w);
void worker_halt(struct fl_worker *w);
void worker_stop(struct fl_worker *w);
void worker_pause(struct fl_worker *w);
void worker_resume(struct fl_worker *w);
int worker_fork_child(struct fl_worker *w);
void worker_fork_release(struct fl_worker *w);

#endif /* FL_WORKER_H */
