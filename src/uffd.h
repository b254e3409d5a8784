/* SPDX-License-Identifier: MIT */
/*
 * The userfaultfd layer: opening and registering, every ioctl that
 * installs, protects or poisons pages, and the SIGBUS handler of sigbus
 * delivery (uffd.c); the handler threads of thread delivery (handler.c).
 * No other files issue a userfaultfd ioctl or read fault messages.
 *
 * The install calls report a partial install as the kernel does: they
 * return the bytes done from the start and set *err to the errno that
 * stopped them (0 if none).
 * Context of every install or protection change: the ptl of each chunk of
 * the range held (the page-table invariant, pgtable.h).
 */
#ifndef FL_UFFD_H
#define FL_UFFD_H

#include "lib.h"

struct fl_space;

int uffd_open(struct fl_space *sp);
int uffd_register(struct fl_space *sp, unsigned long start, unsigned long len, bool file);
bool uffd_files_ok(struct fl_space *sp);
int uffd_wake(struct fl_space *sp, unsigned long start, unsigned long len);
unsigned long uffd_zeropage(struct fl_space *sp, unsigned long start, unsigned long len, int *err);
/* UFFDIO_COPY; with wp, the pages are installed write-protected. */
unsigned long uffd_copy(struct fl_space *sp, unsigned long dst, const void *src, unsigned long len,
			bool wp, int *err);
/* UFFDIO_CONTINUE of a memfd's pages; with wp, write-protected. */
unsigned long uffd_continue(struct fl_space *sp, unsigned long dst, unsigned long len, bool wp,
			    int *err);
unsigned long uffd_move(struct fl_space *sp, unsigned long dst, unsigned long src,
			unsigned long len, int *err);
int uffd_writeprotect(struct fl_space *sp, unsigned long start, unsigned long len, bool wp);
int uffd_poison(struct fl_space *sp, unsigned long start, unsigned long len);

unsigned long uffd_for_each_unregistered(struct fl_space *sp, unsigned long start,
					 unsigned long end,
					 void (*fn)(unsigned long, unsigned long, void *),
					 void *arg);
unsigned long uffd_unregistered_bytes(struct fl_space *sp, unsigned long start, unsigned long end);

/* Log, once per space, that the kernel allows thread tid an access at addr
 * that faultline's VMA forbids (uffd.c, "a fault the kernel allows"). */
void uffd_segv_log(struct fl_space *sp, pid_t tid, unsigned long addr);

/* handler.c */
int uffd_start_handlers(struct fl_space *sp);
void uffd_stop_handlers(struct fl_space *sp);
void uffd_handlers_pause(struct fl_space *sp);
void uffd_handlers_resume(struct fl_space *sp);
int uffd_handlers_fork_child(struct fl_space *sp);
void uffd_handlers_fork_release(struct fl_space *sp);
/* uffd.c */
int sigbus_install(void);
void sigbus_fork_lock(void);
void sigbus_fork_unlock(bool child);

#endif /* FL_UFFD_H */
