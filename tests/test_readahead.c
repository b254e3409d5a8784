// SPDX-License-Identifier: MIT
/*
 * The file readahead decisions on simulated readers (no I/O): a cache of
 * pages, a fault on each page touched that is not in it (a miss: the sync
 * window is read at once) or that carries the readahead mark (the async
 * window is read).  A sequential reader must miss only at its start; a
 * backward one, once per read-around window; MADV_RANDOM reads exactly the
 * pages touched; a random reader gets read-around windows, as the kernel's,
 * and one that misses MMAP_LOTSAMISS times with no hit then reads only what
 * it touches; MADV_SEQUENTIAL reads in windows of twice
 * the maximum.  Windows never pass the end of the file.
 */
#define _GNU_SOURCE
#include <stdbool.h>

#include "util.h"

#include "readahead.h"

#define NPAGES (1UL << 18)
#define RA_PAGES 2048u

struct sim {
	struct file_ra_state ra;
	unsigned char cached[NPAGES], marked[NPAGES];
	unsigned long misses, async, read;
	enum ra_advice advice;
};

static void read_window(struct sim *s, const struct ra_window *w)
{
	CHECK(w->start + w->nr <= NPAGES, "a window past the end: %lu+%u", w->start, w->nr);
	for (unsigned long p = w->start; p < w->start + w->nr; p++)
		if (!s->cached[p]) {
			s->cached[p] = 1;
			s->read++;
		}
	if (w->mark != ULONG_MAX) {
		CHECK(w->mark >= w->start && w->mark < w->start + w->nr, "mark outside");
		s->marked[w->mark] = 1;
	}
}

static void touch(struct sim *s, unsigned long p)
{
	struct ra_window w;

	if (!s->cached[p]) {
		s->misses++;
		ra_sync_mmap(&s->ra, p, NPAGES, s->advice, &w);
		CHECK(p >= w.start && p < w.start + w.nr, "the miss at %lu is not in its window",
		      p);
		read_window(s, &w);
	} else if (s->marked[p]) {
		s->marked[p] = 0;
		if (ra_async_mmap(&s->ra, p, NPAGES, s->advice, &w)) {
			s->async++;
			read_window(s, &w);
		}
	} else {
		ra_hit(&s->ra);
	}
}

static struct sim *sim_new(enum ra_advice advice)
{
	struct sim *s = calloc(1, sizeof(*s));

	CHECK(s, "calloc");
	file_ra_state_init(&s->ra, RA_PAGES);
	s->advice = advice;
	return s;
}

static void report(const char *what, struct sim *s, unsigned long touched)
{
	printf("%-26s %7lu touched: %5lu misses, %4lu async windows, %7lu read (%.2fx)\n", what,
	       touched, s->misses, s->async, s->read, (double)s->read / (double)touched);
}

int main(int argc, char **argv)
{
	struct t_rng r;
	struct sim *s;

	t_rng_init(&r, t_seed_init(argc, argv, "test_readahead"));

	s = sim_new(RA_NORMAL);
	for (unsigned long p = 0; p < NPAGES; p++)
		touch(s, p);
	report("sequential", s, NPAGES);
	CHECK(s->misses == 1, "a sequential reader missed %lu times", s->misses);
	CHECK(s->read == NPAGES, "read %lu", s->read);
	free(s);

	s = sim_new(RA_NORMAL);
	for (unsigned long p = NPAGES; p-- > 0;)
		touch(s, p);
	report("backward", s, NPAGES);
	CHECK(s->misses <= NPAGES / (RA_PAGES / 2) + 2, "backward: %lu misses", s->misses);
	free(s);

	s = sim_new(RA_RANDOM);
	for (int k = 0; k < 20000; k++)
		touch(s, t_below(&r, NPAGES));
	report("MADV_RANDOM", s, 20000);
	CHECK(s->read == s->misses, "random advice read %lu for %lu misses", s->read, s->misses);
	free(s);

	/* Random with no advice: read-around windows, as the kernel's (hits
	 * in them keep mmap_miss low). */
	s = sim_new(RA_NORMAL);
	for (int k = 0; k < 20000; k++)
		touch(s, t_below(&r, NPAGES));
	report("random, no advice", s, 20000);
	CHECK(s->read >= s->misses && s->misses <= NPAGES / (RA_PAGES / 2) + 1,
	      "read-around: %lu misses", s->misses);
	free(s);

	/* Misses and never a hit (pages further apart than a window): after
	 * MMAP_LOTSAMISS of them, only the page touched is read. */
	s = sim_new(RA_NORMAL);
	{
		unsigned long n = 0, last_read = 0, singles = 0;
		for (unsigned long p = RA_PAGES; p < NPAGES; p += RA_PAGES + 1, n++) {
			unsigned long before = s->read;
			touch(s, p);
			last_read = s->read - before;
			singles += n >= MMAP_LOTSAMISS && last_read == 1;
		}
		report("misses with no hit", s, n);
		CHECK(s->misses == n && n > MMAP_LOTSAMISS + 10, "every touch a miss: %lu of %lu",
		      s->misses, n);
		CHECK(singles == n - MMAP_LOTSAMISS,
		      "after %d misses with no hit, %lu of %lu "
		      "misses read one page",
		      MMAP_LOTSAMISS, singles, n - MMAP_LOTSAMISS);
	}
	free(s);

	s = sim_new(RA_SEQUENTIAL);
	for (unsigned long p = 0; p < NPAGES; p++)
		touch(s, p);
	report("MADV_SEQUENTIAL", s, NPAGES);
	CHECK(s->misses == 1 && s->async <= NPAGES / (2 * RA_PAGES) + 1, "sequential advice");
	free(s);

	/* A window at the end of the file stops there. */
	{
		struct file_ra_state ra;
		struct ra_window w;
		file_ra_state_init(&ra, RA_PAGES);
		ra_sync_mmap(&ra, 99, 100, RA_NORMAL, &w);
		CHECK(w.start + w.nr <= 100 && w.start <= 99, "end: %lu+%u", w.start, w.nr);
		CHECK(!ra_async_mmap(&ra, w.mark == ULONG_MAX ? 99 : w.mark, 100, RA_NORMAL, &w) ||
			      w.start + w.nr <= 100,
		      "async past the end");
	}
	printf("test_readahead: PASS\n");
	return T_EXIT_PASS;
}
