// SPDX-License-Identifier: MIT
/* Prefetch beyond sequential: streams, trends and the window (prefetch.h). */
#include "prefetch.h"

/* The first window of a new stream, in pages. */
#define PF_INIT_WINDOW 4
/* Prefetched pages judged between two settings of the cap. */
#define PF_FEEDBACK_PERIOD 256

void pf_vma_init(struct pf_vma *p)
{
	memset(p, 0, sizeof(*p));
	pthread_mutex_init(&p->lock, NULL);
}

void pf_vma_destroy(struct pf_vma *p)
{
	pthread_mutex_destroy(&p->lock);
}

void pf_feedback_init(struct pf_feedback *fb, unsigned int max)
{
	atomic_init(&fb->used, 0);
	atomic_init(&fb->wasted, 0);
	atomic_init(&fb->cap, max);
	fb->max = max;
}

/*
 * The majority of the differences between each of the last w faults and
 * the one lag before it: Boyer-Moore's vote, then a count.  Return: whether
 * more than half of them, and at least three, agree (the stride in *d).
 */
static bool majority(const long *hist, unsigned int n, unsigned int w, unsigned int lag, long *d)
{
	unsigned int from = n - w + lag, votes = 0, agree = 0, total = w - lag;
	long cand = 0;

	for (unsigned int i = from; i < n; i++) {
		long x = hist[i] - hist[i - lag];
		if (!votes)
			cand = x;
		if (x == cand)
			votes++;
		else
			votes--;
	}
	for (unsigned int i = from; i < n; i++)
		agree += hist[i] - hist[i - lag] == cand;
	*d = cand;
	return agree >= 3 && 2 * agree > total;
}

static bool in_history(const long *hist, unsigned int n, long page)
{
	for (unsigned int i = 0; i < n; i++)
		if (hist[i] == page)
			return true;
	return false;
}

/*
 * The stream of the newest fault x = hist[n - 1] alone, whatever the other
 * streams between its faults: the nearest earlier fault x - d such that
 * x - 2d and x - 3d are in the history too (four faults on one lattice, as
 * the vote's three agreeing differences).  Interleaved streams of
 * different strides split the vote, where no stride has a majority; each
 * is found here on its own faults, in whatever order the streams take
 * turns.  Return: whether there is one (its stride in *stride).
 */
static bool lattice(const long *hist, unsigned int n, long *stride)
{
	long x = hist[n - 1];

	for (unsigned int j = n - 1; j-- > 0;) {
		long d = x - hist[j];
		if (!d || d < -PF_MAX_STRIDE || d > PF_MAX_STRIDE)
			continue;
		if (in_history(hist, n - 1, x - 2 * d) && in_history(hist, n - 1, x - 3 * d)) {
			*stride = d;
			return true;
		}
	}
	return false;
}

/*
 * A trend in hist[0..n) (oldest first): the stride of the most recent
 * windows that have one, for the smallest lag that shows it; failing
 * that, the stride of the newest fault's own stream (lattice()).  Return:
 * whether there is one (in *stride).
 */
bool pf_trend(const long *hist, unsigned int n, long *stride)
{
	unsigned int near = 0, from = n > PF_HISTORY ? n - PF_HISTORY : 0;

	/* A majority needs three agreeing differences, nonzero and within
	 * PF_MAX_STRIDE, among those the windows compare: without three such
	 * at all (random faults: nearly always) no window can have one.  The
	 * count is branch-free, lag by lag, which the compiler can vectorize:
	 * it runs on every major fault that continues no stream. */
	for (unsigned int lag = 1; lag <= PF_MAX_LAG; lag++)
		for (unsigned int i = MAX(from, lag); i < n; i++) {
			unsigned long x = (unsigned long)(hist[i] - hist[i - lag]);
			near += (x + PF_MAX_STRIDE <= 2 * PF_MAX_STRIDE) & (x != 0);
		}
	for (unsigned int w = 4; near >= 3 && w <= n && w <= PF_HISTORY; w *= 2) {
		for (unsigned int lag = 1; lag <= PF_MAX_LAG && w - lag >= 3; lag++) {
			long d;
			if (majority(hist, n, w, lag, &d) && d && d >= -PF_MAX_STRIDE &&
			    d <= PF_MAX_STRIDE) {
				*stride = d;
				return true;
			}
		}
	}
	return n >= 4 && lattice(hist, n, stride);
}

/* Whether page lies on stream s ahead of where it last went on, up to its
 * next expected fault. */
static bool on_stream(const struct pf_stream *s, long page)
{
	long from = s->next - s->stride * (long)(s->window + 1), k;

	if (!s->stride || (page - from) % s->stride)
		return false;
	k = (page - from) / s->stride;
	return k > 0 && k <= (long)s->window + 1;
}

static void plan_stream(struct pf_stream *s, long page, unsigned int cap, struct pf_plan *plan)
{
	s->window = MIN(s->window, cap);
	s->next = page + s->stride * (long)(s->window + 1);
	plan->start = page + s->stride;
	plan->stride = s->stride;
	plan->count = s->window;
}

/* The history, oldest first, into out; return its length. */
static unsigned int history(const struct pf_vma *p, long *out)
{
	unsigned int k = (p->head + PF_HISTORY - p->nhist) % PF_HISTORY;

	for (unsigned int i = 0; i < p->nhist; i++) {
		out[i] = p->hist[k];
		k = k + 1 == PF_HISTORY ? 0 : k + 1;
	}
	return p->nhist;
}

/* Drop from the history the faults a new stream explains: those on its
 * lattice behind page. */
static void forget_stream(struct pf_vma *p, const long *h, unsigned int n, long page, long stride)
{
	unsigned int keep = 0;

	for (unsigned int i = 0; i < n; i++) {
		long back = page - h[i];
		if (back % stride == 0 && back / stride >= 0 && back / stride <= PF_HISTORY)
			continue;
		p->hist[keep++] = h[i];
	}
	p->nhist = keep;
	p->head = keep % PF_HISTORY;
}

/*
 * A major fault at page (a page number) of the VMA p: does a stream go on
 * there, or start there?  Return: whether to read ahead, as *plan says.
 * Context: the fault's lock held; takes p->lock.
 */
bool pf_on_fault(struct pf_vma *p, struct pf_feedback *fb, long page, struct pf_plan *plan)
{
	unsigned int cap = MAX(atomic_load_explicit(&fb->cap, memory_order_relaxed), 1u);
	long h[PF_HISTORY], stride;
	struct pf_stream *s, *lru;
	unsigned int n;
	bool ret = false;

	pthread_mutex_lock(&p->lock);
	p->clock++;
	for (unsigned int i = 0; i < PF_STREAMS; i++) {
		s = &p->s[i];
		if (!on_stream(s, page))
			continue;
		/* It goes on: a larger window, as readahead's. */
		s->window = MIN(MAX(s->window * 2, 1u), fb->max);
		s->used = p->clock;
		plan_stream(s, page, cap, plan);
		ret = true;
		goto out;
	}
	p->hist[p->head] = page;
	p->head = (p->head + 1) % PF_HISTORY;
	p->nhist = MIN(p->nhist + 1, (unsigned int)PF_HISTORY);
	n = history(p, h);
	/* The page after the last unexplained fault is a sequential stream
	 * at once, as the kernel's readahead takes it; any other stride needs
	 * a majority. */
	if (n >= 2 && h[n - 2] + 1 == page)
		stride = 1;
	else if (!pf_trend(h, n, &stride))
		goto out;
	lru = &p->s[0];
	for (unsigned int i = 1; i < PF_STREAMS; i++)
		if (p->s[i].used < lru->used)
			lru = &p->s[i];
	*lru = (struct pf_stream){.stride = stride, .window = PF_INIT_WINDOW, .used = p->clock};
	plan_stream(lru, page, cap, plan);
	forget_stream(p, h, n, page, stride);
	ret = true;
out:
	pthread_mutex_unlock(&p->lock);
	return ret;
}

/*
 * Pages read ahead that a fault used, and that reclaim took unused.  Every
 * PF_FEEDBACK_PERIOD of them the cap is judged: halved when more went
 * unused than used, doubled (up to max) when fewer than one in eight went
 * unused.  Context: any; atomics only.
 */
void pf_feedback(struct pf_feedback *fb, unsigned int used, unsigned int wasted)
{
	uint64_t u = atomic_fetch_add_explicit(&fb->used, used, memory_order_relaxed) + used;
	uint64_t w = atomic_fetch_add_explicit(&fb->wasted, wasted, memory_order_relaxed) + wasted;
	unsigned int cap;

	if (u + w < PF_FEEDBACK_PERIOD)
		return;
	/* One thread judges the period; the others' counts go to the next. */
	if (!atomic_compare_exchange_strong(&fb->used, &u, 0))
		return;
	atomic_fetch_sub_explicit(&fb->wasted, w, memory_order_relaxed);
	cap = atomic_load_explicit(&fb->cap, memory_order_relaxed);
	if (w > u)
		cap = MAX(cap / 2, 1u);
	else if (w * 8 < u + w)
		cap = MIN(cap * 2, fb->max);
	atomic_store_explicit(&fb->cap, cap, memory_order_relaxed);
}
