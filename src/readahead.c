// SPDX-License-Identifier: MIT
/* File readahead decisions for mapped files (readahead.h). */
#include "readahead.h"

void file_ra_state_init(struct file_ra_state *ra, unsigned int ra_pages)
{
	memset(ra, 0, sizeof(*ra));
	ra->ra_pages = MAX(ra_pages, 1u);
	ra->prev_index = ULONG_MAX;
}

static unsigned long roundup_pow2(unsigned long x)
{
	unsigned long p = 1;

	while (p < x)
		p <<= 1;
	return p;
}

/* The first window of a stream: get_init_ra_size(). */
static unsigned int init_ra_size(unsigned int req, unsigned int max)
{
	unsigned long n = roundup_pow2(req);

	if (n <= max / 32)
		n *= 4;
	else if (n <= max / 4)
		n *= 2;
	else
		n = max;
	return (unsigned int)MIN(n, max);
}

/* The window after one of cur pages: get_next_ra_size(). */
static unsigned int next_ra_size(unsigned int cur, unsigned int max)
{
	if (cur < max / 16)
		return 4 * cur;
	if (cur <= max / 2)
		return 2 * cur;
	return max;
}

/* Clamp [start, start + size) to the file, and set w and the marker. */
static void set_window(struct file_ra_state *ra, unsigned long start, unsigned int size,
		       unsigned int async, unsigned long nr_pages, struct ra_window *w)
{
	if (start >= nr_pages) {
		*w = (struct ra_window){start, 0, ULONG_MAX};
		ra->start = start;
		ra->size = ra->async_size = 0;
		return;
	}
	size = (unsigned int)MIN((unsigned long)size, nr_pages - start);
	async = MIN(async, size);
	ra->start = start;
	ra->size = size;
	ra->async_size = async;
	w->start = start;
	w->nr = size;
	w->mark = async ? start + size - async : ULONG_MAX;
}

/*
 * A fault at index found no page in the cache (a miss): the window to read
 * synchronously.  nr_pages: the file's length in pages.
 */
void ra_sync_mmap(struct file_ra_state *ra, unsigned long index, unsigned long nr_pages,
		  enum ra_advice advice, struct ra_window *w)
{
	unsigned int max = ra->ra_pages;
	bool sequential =
		ra->prev_index != ULONG_MAX &&
		(index == ra->prev_index + 1 || (ra->size && index == ra->start + ra->size));

	ra->prev_index = index;
	if (advice == RA_RANDOM) {
		set_window(ra, index, 1, 0, nr_pages, w);
		return;
	}
	if (advice == RA_SEQUENTIAL) {
		set_window(ra, index, 2 * max, max, nr_pages, w);
		return;
	}
	if (sequential) {
		/* page_cache_sync_ra() on a sequential miss: ramp up. */
		unsigned int size = ra->size ? next_ra_size(ra->size, max) : init_ra_size(1, max);
		set_window(ra, index, size, size, nr_pages, w);
		return;
	}
	/* Too many misses and no hit: the mapping is read at random. */
	if (ra->mmap_miss < 10 * MMAP_LOTSAMISS)
		ra->mmap_miss++;
	if (ra->mmap_miss > MMAP_LOTSAMISS) {
		set_window(ra, index, 1, 0, nr_pages, w);
		return;
	}
	/* Read-around: ra_pages centred on the fault. */
	unsigned long start = index > max / 2 ? index - max / 2 : 0;
	set_window(ra, start, max, max / 4, nr_pages, w);
}

/*
 * A fault at index found its page cached, and it is the marked one: the
 * next window, to read without waiting.  Return: whether to read one.
 */
bool ra_async_mmap(struct file_ra_state *ra, unsigned long index, unsigned long nr_pages,
		   enum ra_advice advice, struct ra_window *w)
{
	unsigned int size;

	ra_hit(ra);
	if (advice == RA_RANDOM)
		return false;
	/* The marker of another window than the current one (an older
	 * window, or another reader of the file): start from here. */
	if (!ra->size || index < ra->start || index >= ra->start + ra->size) {
		size = init_ra_size(1, ra->ra_pages);
		set_window(ra, index + 1, size, size, nr_pages, w);
		return w->nr > 0;
	}
	size = advice == RA_SEQUENTIAL ? 2 * ra->ra_pages : next_ra_size(ra->size, ra->ra_pages);
	set_window(ra, ra->start + ra->size, size, size, nr_pages, w);
	return w->nr > 0;
}

/* A fault found its page cached: the mapping is not read at random. */
void ra_hit(struct file_ra_state *ra)
{
	if (ra->mmap_miss)
		ra->mmap_miss--;
}
