/* SPDX-License-Identifier: MIT */
/*
 * A set of pages (page address -> a 32-bit value), open addressing with
 * linear probing and tombstones: what faultline run's recorder uses to keep
 * the first touches of each page (run_record.c), and the lab's start
 * scenario to plan a replay (lab_start.c).  Single-threaded.
 */
#ifndef FL_TOOLS_PAGESET_H
#define FL_TOOLS_PAGESET_H

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define PS_EMPTY 0 /* page addresses are page-aligned: never 0 or 1 here */
#define PS_TOMB 1

struct pageset {
	uint64_t *key;
	uint32_t *val;
	size_t cap;  /* a power of two */
	size_t used; /* live and tombstones */
	size_t live;
};

static inline size_t ps_slot(const struct pageset *s, uint64_t k)
{
	k ^= k >> 33;
	k *= 0xff51afd7ed558ccdULL;
	k ^= k >> 33;
	return (size_t)k & (s->cap - 1);
}

static inline int ps_init(struct pageset *s, size_t cap)
{
	s->cap = 64;
	while (s->cap < cap * 2)
		s->cap <<= 1;
	s->key = calloc(s->cap, sizeof(*s->key));
	s->val = calloc(s->cap, sizeof(*s->val));
	s->used = s->live = 0;
	return s->key && s->val ? 0 : -1;
}

static inline void ps_free(struct pageset *s)
{
	free(s->key);
	free(s->val);
	memset(s, 0, sizeof(*s));
}

/* The value of page k, NULL if absent. */
static inline uint32_t *ps_find(const struct pageset *s, uint64_t k)
{
	for (size_t i = ps_slot(s, k);; i = (i + 1) & (s->cap - 1)) {
		if (s->key[i] == k)
			return &s->val[i];
		if (s->key[i] == PS_EMPTY)
			return NULL;
	}
}

static inline int ps_grow(struct pageset *s);

/* The value of page k, added with value 0 if absent; NULL: out of memory. */
static inline uint32_t *ps_add(struct pageset *s, uint64_t k)
{
	uint32_t *v = ps_find(s, k);
	size_t i;

	if (v)
		return v;
	if ((s->used + 1) * 2 > s->cap && ps_grow(s))
		return NULL;
	for (i = ps_slot(s, k); s->key[i] > PS_TOMB; i = (i + 1) & (s->cap - 1))
		;
	if (s->key[i] == PS_EMPTY)
		s->used++;
	s->key[i] = k;
	s->val[i] = 0;
	s->live++;
	return &s->val[i];
}

static inline int ps_grow(struct pageset *s)
{
	struct pageset n;

	if (ps_init(&n, s->live * 2 + 64)) {
		ps_free(&n);
		return -1;
	}
	for (size_t i = 0; i < s->cap; i++)
		if (s->key[i] > PS_TOMB)
			*ps_add(&n, s->key[i]) = s->val[i];
	ps_free(s);
	*s = n;
	return 0;
}

static inline void ps_del(struct pageset *s, uint64_t k)
{
	uint32_t *v = ps_find(s, k);

	if (v) {
		s->key[v - s->val] = PS_TOMB;
		s->live--;
	}
}

/*
 * Call fn(page, value, arg) for every page of [start, end) in the set,
 * in no particular order; fn may not change the set.
 */
static inline void ps_each_in(const struct pageset *s, uint64_t start, uint64_t end,
			      void (*fn)(uint64_t, uint32_t *, void *), void *arg)
{
	if ((end - start) / 4096 <= s->cap) {
		for (uint64_t p = start; p < end; p += 4096) {
			uint32_t *v = ps_find(s, p);

			if (v)
				fn(p, v, arg);
		}
		return;
	}
	for (size_t i = 0; i < s->cap; i++)
		if (s->key[i] > PS_TOMB && s->key[i] >= start && s->key[i] < end)
			fn(s->key[i], &s->val[i], arg);
}

/* Remove the pages of [start, end). */
static inline void ps_del_range(struct pageset *s, uint64_t start, uint64_t end)
{
	if ((end - start) / 4096 <= s->cap) {
		for (uint64_t p = start; p < end; p += 4096)
			ps_del(s, p);
		return;
	}
	for (size_t i = 0; i < s->cap; i++)
		if (s->key[i] > PS_TOMB && s->key[i] >= start && s->key[i] < end) {
			s->key[i] = PS_TOMB;
			s->live--;
		}
}

#endif
