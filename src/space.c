// SPDX-License-Identifier: MIT
/*
 * The address space: creation, destruction, and the process-wide list of
 * spaces that the SIGBUS handler searches.
 *
 * spaces_lock: protects changes of the list `spaces`; readers walk it under
 * rcu_read_lock.  Never held with another faultline lock (doc/locking.md).
 */
#include "space.h"

#include <sys/mman.h>

#include "cont.h"
#include "fault.h"
#include "options.h"
#include "pgtable.h"
#include "reclaim.h"
#include "swap.h"
#include "uffd.h"
#include "vma.h"

static pthread_mutex_t spaces_lock = PTHREAD_MUTEX_INITIALIZER;
static CDS_LIST_HEAD(spaces);

/*
 * Context: rcu_read_lock held.  Return: the space with a VMA at addr, or
 * NULL.  Lock-free: the answer may be stale by the time the
 * fault path locks the VMA, which then looks again.
 */
struct fl_space *fl_space_of_addr_rcu(unsigned long addr)
{
	struct fl_space *sp;

	cds_list_for_each_entry_rcu (sp, &spaces, list) {
		struct vma_index *idx = vma_index_get(sp);
		size_t i = vma_index_first(idx, addr);
		if (i < idx->nr && idx->v[i]->vm_start <= addr)
			return sp;
	}
	return NULL;
}

/*
 * A SIGBUS at an address no space's index has: perhaps a write section is
 * changing that very range.  Wait for each space's writer (mmap_read_lock) and
 * look again; serve the fault if a space has it now.
 * Context: SIGBUS handler, no faultline lock held.  Return: 0 if served.
 */
int fl_handle_foreign_sigbus_slow(unsigned long addr, unsigned int flags)
{
	struct fl_space *sp, *found = NULL;

	rcu_read_lock();
	cds_list_for_each_entry_rcu (sp, &spaces, list) {
		mmap_read_lock(sp);
		bool hit = vma_lookup(sp, addr) != NULL;
		mmap_read_unlock(sp);
		if (hit) {
			found = sp;
			break;
		}
	}
	fl_rcu_read_unlock();
	if (!found)
		return -ENOENT;
	fl_handle_fault(found, addr, flags);
	return 0;
}

FL_EXPORT int fl_space_create(const struct fl_config *cfg, struct fl_space **out)
{
	struct fl_space *sp;
	int ret;

	if (!out)
		return -EINVAL;
	*out = NULL;
	sp = calloc(1, sizeof(*sp));
	if (!sp)
		return -ENOMEM;
	sp->uffd = -1;
	sp->stop_fd = -1;
	sp->resizer.fd = -1;
	sp->retry_fd = -1;
	sp->mem_fd = -1;
	sp->kswapd.fd = -1;
	fl_options_defaults(&sp->cfg);
	if (cfg) {
		if (cfg->size < offsetof(struct fl_config, handlers) || cfg->size > 4096) {
			free(sp);
			return -EINVAL;
		}
		/* What the caller's struct has, from it (its fl_config_init()
		 * read the environment); the fields a caller built against an
		 * older header lacks, from defaults and the environment. */
		fl_options_from_env(&sp->cfg, cfg->size);
		memcpy(&sp->cfg, cfg, MIN(cfg->size, sizeof(sp->cfg)));
		sp->cfg.size = sizeof(sp->cfg);
	} else {
		fl_options_from_env(&sp->cfg, 0);
	}
	ret = fl_options_validate(&sp->cfg);
	if (ret) {
		free(sp);
		return ret;
	}
	mmap_lock_init(&sp->mmap_lock);
	sp->stats = aligned_alloc(64, FL_STAT_STRIPES * sizeof(*sp->stats));
	sp->index = vma_index_new(0);
	sp->empty_index = vma_index_new(0); /* for fl_space_destroy(), which cannot fail */
	if (!sp->stats || !sp->index || !sp->empty_index) {
		ret = -ENOMEM;
		goto fail;
	}
	memset(sp->stats, 0, FL_STAT_STRIPES * sizeof(*sp->stats));
	sp->zero_src = mmap(NULL, (size_t)sp->cfg.fault_around_max * PAGE_SIZE, PROT_READ,
			    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (sp->zero_src == MAP_FAILED) {
		sp->zero_src = NULL;
		ret = -ENOMEM;
		goto fail;
	}
	ret = pt_init(sp);
	if (ret)
		goto fail;
	ret = cont_init(sp);
	if (ret)
		goto fail;
	ret = swap_init(sp);
	if (ret)
		goto fail;
	ret = reclaim_init(sp);
	if (ret)
		goto fail;
	ret = uffd_open(sp);
	if (ret)
		goto fail;
	if (sp->cfg.delivery == FL_DELIVERY_SIGBUS) {
		ret = sigbus_install();
		if (ret)
			goto fail;
	} else {
		ret = uffd_start_handlers(sp);
		if (ret)
			goto fail;
	}
	pthread_mutex_lock(&spaces_lock);
	cds_list_add_rcu(&sp->list, &spaces);
	pthread_mutex_unlock(&spaces_lock);
	fl_dbg(sp, "space %p: delivery %s, %u handler(s)", (void *)sp,
	       fl_delivery_name(sp->cfg.delivery), sp->nr_handlers);
	*out = sp;
	return 0;
fail:
	fl_space_destroy(sp);
	return ret;
}

FL_EXPORT void fl_space_destroy(struct fl_space *sp)
{
	struct vma_index *idx;

	if (!sp)
		return;
	if (sp->list.next) {
		pthread_mutex_lock(&spaces_lock);
		cds_list_del_rcu(&sp->list);
		pthread_mutex_unlock(&spaces_lock);
	}
	/*
	 * Unmap everything, as fl_munmap would, so that handler threads that
	 * still hold messages find nothing and wake their threads.  The empty
	 * index is published before the VMAs are queued for freeing, and the
	 * grace period is waited for only after mmap_lock is released: the
	 * SIGBUS slow path sleeps on mmap_lock inside a read-side section.
	 */
	if (sp->index && sp->stats && sp->empty_index) {
		mmap_write_lock(sp);
		idx = vma_index_get(sp);
		for (size_t i = 0; i < idx->nr; i++) {
			struct vma *v = idx->v[i];
			vma_start_write(v);
			munmap((void *)v->vm_start, v->vm_end - v->vm_start);
			if (sp->pt)
				pt_zap_range(sp, v->vm_start, v->vm_end, false);
		}
		atomic_store_explicit(&sp->index, sp->empty_index, memory_order_release);
		sp->empty_index = NULL;
		for (size_t i = 0; i < idx->nr; i++) {
			atomic_store(&idx->v[i]->detached, true);
			vma_free_rcu(idx->v[i]);
		}
		mmap_write_unlock(sp);
		fl_synchronize_rcu();
		free(idx);
	}
	/* Handler threads first: they poll retry_fd, which cont_destroy()
	 * closes; kswapd after them, whose faults may still kick it; then the
	 * store, which waits for the I/O in flight and finishes the retries
	 * its completions queued (with the userfaultfd still open, to wake). */
	uffd_stop_handlers(sp);
	if (sp->lru.next)
		reclaim_destroy(sp);
	swap_destroy(sp);
	if (sp->retry_fd >= 0)
		cont_destroy(sp);
	if (sp->uffd >= 0)
		close(sp->uffd);
	fl_synchronize_rcu();
	fl_rcu_barrier();
	pt_destroy(sp);
	if (sp->zero_src)
		munmap(sp->zero_src, (size_t)sp->cfg.fault_around_max * PAGE_SIZE);
	free(atomic_load(&sp->index));
	free(sp->empty_index);
	free(sp->stats);
	mmap_lock_destroy(&sp->mmap_lock);
	free(sp);
}
