// SPDX-License-Identifier: MIT
/*
 * Statistics.  FL_STATS_FIELDS (faultline.h) is the one list: it generates
 * the public struct, the enum of counters, and both printers below.
 */
#include "stats.h"

#include <sched.h>

#include "space.h"
#include "rstore.h"
#include "swap.h"
#include "tier.h"
#include "vma.h"

struct fl_stat_stripe *stat_stripe(struct fl_space *sp)
{
	int cpu = sched_getcpu();

	return &sp->stats[(unsigned int)(cpu < 0 ? 0 : cpu) % FL_STAT_STRIPES];
}

FL_EXPORT int fl_stats(struct fl_space *sp, struct fl_stats *out)
{
	uint64_t v[FL_STAT_NR] = {0};
	struct fl_hist_snap *h;

	if (!out || !space_get(sp))
		return -EINVAL;
	h = calloc(1, sizeof(*h));
	if (!h) {
		space_put(sp);
		return -ENOMEM;
	}
	for (unsigned int s = 0; s < FL_STAT_STRIPES; s++) {
		for (unsigned int i = 0; i < FL_STAT_NR; i++)
			v[i] += atomic_load_explicit(&sp->stats[s].v[i], memory_order_relaxed);
		fl_hist_snap_add(h, &sp->stats[s].fault_ns);
	}
	v[FL_STAT_resident_pages] = (uint64_t)MAX(0, atomic_load(&sp->resident_pages));
	v[FL_STAT_mapped_bytes] = (uint64_t)MAX(0, atomic_load(&sp->mapped_bytes));
	v[FL_STAT_pgtable_bytes] = (uint64_t)atomic_load(&sp->nr_chunks) * sizeof(struct pt_chunk);
	v[FL_STAT_frames_used] = (uint64_t)MAX(0, atomic_load(&sp->frames_used));
	v[FL_STAT_file_pages] = (uint64_t)MAX(0, atomic_load(&sp->file_pages));
	v[FL_STAT_file_dirty] = (uint64_t)MAX(0, atomic_load(&sp->file_dirty));
	v[FL_STAT_file_writeback] = (uint64_t)MAX(0, atomic_load(&sp->file_writeback));
	v[FL_STAT_files] = (uint64_t)MAX(0, atomic_load(&sp->nr_files));
	if (sp->swap_on)
		v[FL_STAT_prefetch_window] = atomic_load(&sp->pf_fb.cap);
	if (sp->dev_open) {
		uint64_t n = atomic_load(&sp->dev.inflight_samples);
		v[FL_STAT_io_inflight_max] = (uint64_t)atomic_load(&sp->dev.inflight_max);
		v[FL_STAT_io_inflight_mean] = n ? atomic_load(&sp->dev.inflight_sum) / n : 0;
		v[FL_STAT_store_bytes] = atomic_load(&sp->dev.used_hint) * SWAP_SLOT_SIZE;
		v[FL_STAT_store_full] = atomic_load(&sp->dev.full_count);
		v[FL_STAT_store_discarded] = atomic_load(&sp->dev.discarded);
		struct fl_hist_snap *rh = calloc(1, sizeof(*rh));
		struct rstore *rs = rstore_of(&sp->dev);

		if (rh) {
			fl_hist_snap_add(rh, &sp->dev.read_ns);
			v[FL_STAT_store_read_ns_p50] = fl_hist_percentile(rh, 0.50);
			v[FL_STAT_store_read_ns_p99] = fl_hist_percentile(rh, 0.99);
			v[FL_STAT_store_read_ns_max] = rh->max;
			memset(rh, 0, sizeof(*rh));
			fl_hist_snap_add(rh, &sp->dev.write_ns);
			v[FL_STAT_store_write_ns_p50] = fl_hist_percentile(rh, 0.50);
			v[FL_STAT_store_write_ns_p99] = fl_hist_percentile(rh, 0.99);
			v[FL_STAT_store_write_ns_max] = rh->max;
			free(rh);
		}
		if (rs) {
			v[FL_STAT_remote_failovers] = atomic_load(&rs->failovers);
			v[FL_STAT_remote_redirects] = atomic_load(&rs->redirects);
			v[FL_STAT_remote_retries] = atomic_load(&rs->retries);
			v[FL_STAT_remote_lost] = atomic_load(&rs->lost);
			v[FL_STAT_remote_timeouts] = atomic_load(&rs->timeouts);
			v[FL_STAT_remote_errors] = atomic_load(&rs->errors);
		}
		v[FL_STAT_store_reads] = atomic_load(&sp->dev.pages_read);
		v[FL_STAT_store_writes] = atomic_load(&sp->dev.pages_written);
	}
	if (sp->tier) {
		struct tier *t = sp->tier;
		struct zswap_stats *zs = &t->z.st;
		struct fl_hist_snap *lh = calloc(1, sizeof(*lh));

		v[FL_STAT_zswap_stores] = atomic_load(&zs->stores);
		v[FL_STAT_zswap_same_filled] = atomic_load(&zs->same_filled);
		v[FL_STAT_zswap_incompressible] = atomic_load(&zs->incompressible);
		v[FL_STAT_zswap_full] = atomic_load(&zs->rejected_full);
		v[FL_STAT_zswap_busy] = atomic_load(&zs->rejected_busy);
		v[FL_STAT_zswap_ctx_waits] = atomic_load(&zs->ctx_waits);
		v[FL_STAT_zswap_hits] = atomic_load(&zs->hits);
		v[FL_STAT_zswap_load_retries] = atomic_load(&zs->load_retries);
		v[FL_STAT_zswap_load_locked] = atomic_load(&zs->load_locked);
		v[FL_STAT_zswap_second_chances] = atomic_load(&zs->rotated);
		v[FL_STAT_zswap_writebacks] = atomic_load(&zs->writebacks);
		v[FL_STAT_zswap_compactions] = atomic_load(&zs->compactions);
		v[FL_STAT_zswap_compacted] = atomic_load(&zs->compacted);
		v[FL_STAT_zswap_errors] =
			atomic_load(&zs->decompress_errors) + atomic_load(&t->wb_errors);
		pthread_mutex_lock(&t->z.lock);
		v[FL_STAT_zswap_pages] = t->z.nr;
		v[FL_STAT_zswap_incompressible_pages] = t->z.nr_raw;
		v[FL_STAT_zswap_stored_bytes] = t->z.stored_bytes;
		pthread_mutex_unlock(&t->z.lock);
		v[FL_STAT_zswap_pool_bytes] = zswap_pool_bytes(&t->z);
		v[FL_STAT_zswap_ratio_pct] = v[FL_STAT_zswap_pool_bytes]
						     ? v[FL_STAT_zswap_pages] * PAGE_SIZE * 100 /
							       v[FL_STAT_zswap_pool_bytes]
						     : 0;
		if (lh) {
			fl_hist_snap_add(lh, &t->load_ns);
			v[FL_STAT_zswap_load_ns_p50] = fl_hist_percentile(lh, 0.50);
			v[FL_STAT_zswap_load_ns_p99] = fl_hist_percentile(lh, 0.99);
			v[FL_STAT_zswap_load_ns_max] = lh->max;
			free(lh);
		}
	}
	rcu_read_lock();
	v[FL_STAT_vmas] = vma_index_get(sp)->nr;
	fl_rcu_read_unlock();
	v[FL_STAT_fault_ns_p50] = fl_hist_percentile(h, 0.50);
	v[FL_STAT_fault_ns_p90] = fl_hist_percentile(h, 0.90);
	v[FL_STAT_fault_ns_p99] = fl_hist_percentile(h, 0.99);
	v[FL_STAT_fault_ns_p999] = fl_hist_percentile(h, 0.999);
	v[FL_STAT_fault_ns_max] = h->max;
	v[FL_STAT_fault_ns_mean] = h->count ? h->sum / h->count : 0;
	free(h);
	space_put(sp);

#define FL_STAT_COPY_(name, kind, desc) out->name = v[FL_STAT_##name];
	FL_STATS_FIELDS(FL_STAT_COPY_)
#undef FL_STAT_COPY_
	return 0;
}

FL_EXPORT int fl_stats_print_snapshot(const struct fl_stats *st, FILE *out, int flags)
{
	if (!st || !out)
		return -EINVAL;
	if (flags & FL_STATS_JSON) {
		const char *sep = "";
		fputc('{', out);
#define FL_STAT_JSON_(name, kind, desc)                                          \
	fprintf(out, "%s\"%s\":%llu", sep, #name, (unsigned long long)st->name); \
	sep = ",";
		FL_STATS_FIELDS(FL_STAT_JSON_)
#undef FL_STAT_JSON_
		fputs("}\n", out);
	} else {
#define FL_STAT_TEXT_(name, kind, desc)                                             \
	fprintf(out, "%-22s %14llu%-3s  %s\n", #name, (unsigned long long)st->name, \
		(kind) == FL_NSEC ? " ns" : "", desc);
		FL_STATS_FIELDS(FL_STAT_TEXT_)
#undef FL_STAT_TEXT_
	}
	return ferror(out) ? -EIO : 0;
}

FL_EXPORT int fl_stats_print(struct fl_space *sp, FILE *out, int flags)
{
	struct fl_stats st;
	int ret = fl_stats(sp, &st);

	if (ret)
		return ret;
	return fl_stats_print_snapshot(&st, out, flags);
}
