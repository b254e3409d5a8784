// SPDX-License-Identifier: MIT
/*
 * Working-set record and replay for mapped files (workingset.h).
 *
 * Record: the first fault on each page of a mapped file in this space
 * (PG_RECORDED marks it) appends (device, inode, page) to an mmap'd array,
 * in the order of the faults; fl_space_destroy() writes the array to the
 * file, one page a line, after a header line.
 *
 * Replay: the file is read at space creation; a thread (fl-replay) reads the
 * pages into the page cache in the recorded order, consecutive pages of one
 * file as one read, as their files get mapped (filemap_get() kicks it), and
 * stops at a file not mapped yet until one is.  It only tries page locks
 * (filemap_readahead()): a fault never waits for the replay except for the
 * one read that brings its own page, so a page the replay has not reached
 * is served by its fault at once.
 *
 * Locks: none of its own.  The replayer takes files_lock to find a file,
 * and page locks by trylock.
 */
#include "workingset.h"

#include <fcntl.h>
#include <sys/mman.h>

#include "fileio.h"
#include "filemap.h"
#include "space.h"
#include "stats.h"

#define WS_HEADER "faultline-ws 1"
#define WS_MAX (1UL << 22) /* pages recorded at most: 96 MiB of entries, reserved */
#define WS_RUN 64	   /* pages per replay read */

/* Read a recorded working set.  Return: 0 or a negative errno. */
static int ws_load(struct ws_state *ws, const char *path)
{
	FILE *in = fopen(path, "re");
	char line[128];
	size_t cap = 0;

	if (!in)
		return -errno;
	if (!fgets(line, sizeof(line), in) || strncmp(line, WS_HEADER, strlen(WS_HEADER))) {
		fclose(in);
		fl_log("FAULTLINE_WS_REPLAY=%s is not a working set recorded by faultline", path);
		return -EINVAL;
	}
	while (fgets(line, sizeof(line), in)) {
		unsigned long long dev, ino, pgoff;

		if (sscanf(line, "%llu %llu %llu", &dev, &ino, &pgoff) != 3)
			continue;
		if (ws->plan_n == cap) {
			size_t ncap = cap ? 2 * cap : 4096;
			struct ws_entry *n = realloc(ws->plan, ncap * sizeof(*n));
			if (!n) {
				fclose(in);
				return -ENOMEM;
			}
			ws->plan = n;
			cap = ncap;
		}
		ws->plan[ws->plan_n++] = (struct ws_entry){dev, ino, (unsigned long)pgoff};
	}
	fclose(in);
	return 0;
}

/* The space's file (dev, ino), with a reference, or NULL. */
static struct fl_file *find_file(struct fl_space *sp, uint64_t dev, uint64_t ino)
{
	struct fl_file *f;

	pthread_mutex_lock(&sp->files_lock);
	for (f = sp->files; f; f = f->next)
		if ((uint64_t)f->dev == dev && (uint64_t)f->ino == ino)
			break;
	if (f)
		file_get(f);
	pthread_mutex_unlock(&sp->files_lock);
	return f;
}

/* The replayer's round: on from where it stopped, while its files are mapped. */
static void replay_round(void *arg)
{
	struct fl_space *sp = arg;
	struct ws_state *ws = sp->ws;

	while (ws->next < ws->plan_n && !atomic_load(&ws->replayer.stop)) {
		const struct ws_entry *e = &ws->plan[ws->next];
		struct fl_file *f = find_file(sp, e->dev, e->ino);
		size_t n = 1;

		if (!f)
			return; /* not mapped yet: kicked when a file is */
		while (ws->next + n < ws->plan_n && n < WS_RUN && e[n].dev == e->dev &&
		       e[n].ino == e->ino && e[n].pgoff == e->pgoff + n)
			n++;
		filemap_readahead(sp, f, e->pgoff, e->pgoff + n, ULONG_MAX, true);
		count_event_n(sp, ws_replayed, n);
		file_put(f);
		ws->next += n;
	}
}

/* Context: space creation.  Return: 0 or a negative errno. */
int ws_init(struct fl_space *sp)
{
	struct ws_state *ws;
	int ret;

	if (!sp->cfg.ws_record && !sp->cfg.ws_replay)
		return 0;
	ws = calloc(1, sizeof(*ws));
	if (!ws)
		return -ENOMEM;
	ws->replayer.fd = -1;
	sp->ws = ws;
	if (sp->cfg.ws_record) {
		ws->record_path = strdup(sp->cfg.ws_record);
		ws->rec = mmap(NULL, WS_MAX * sizeof(*ws->rec), PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (!ws->record_path || ws->rec == MAP_FAILED) {
			ws->rec = NULL;
			return -ENOMEM;
		}
		ws->rec_cap = WS_MAX;
	}
	if (sp->cfg.ws_replay) {
		ret = ws_load(ws, sp->cfg.ws_replay);
		if (ret) {
			fl_log("cannot replay the working set %s: %s", sp->cfg.ws_replay,
			       strerror(-ret));
			return ret;
		}
		return worker_start(&ws->replayer, "fl-replay", replay_round, sp, -1);
	}
	return 0;
}

/*
 * A fault mapped page idx of f: the first one is recorded.
 * Context: any, the SIGBUS handler too.
 */
void ws_record_fault(struct fl_space *sp, struct fl_file *f, unsigned long idx)
{
	struct ws_state *ws = sp->ws;
	size_t n;

	if (!ws || !ws->rec)
		return;
	if (atomic_fetch_or_explicit(&f->state[idx], PG_RECORDED, memory_order_relaxed) &
	    PG_RECORDED)
		return;
	n = atomic_fetch_add(&ws->rec_n, 1);
	if (n >= ws->rec_cap)
		return;
	ws->rec[n] = (struct ws_entry){(uint64_t)f->dev, (uint64_t)f->ino, idx};
	count_event(sp, ws_recorded);
}

/* A file was mapped: the replayer may go on.  Context: any. */
void ws_file_mapped(struct fl_space *sp)
{
	if (sp->ws && sp->ws->plan)
		worker_kick(&sp->ws->replayer);
}

/* Write the record (a new file, mode 0600).  Return: 0 or a negative errno. */
static int ws_write(struct ws_state *ws)
{
	size_t n = MIN(atomic_load(&ws->rec_n), ws->rec_cap);
	FILE *out;
	int fd = open(ws->record_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	if (fd < 0)
		return -errno;
	out = fdopen(fd, "w");
	if (!out) {
		close(fd);
		return -ENOMEM;
	}
	fprintf(out, "%s\n", WS_HEADER);
	for (size_t i = 0; i < n; i++)
		fprintf(out, "%llu %llu %lu\n", (unsigned long long)ws->rec[i].dev,
			(unsigned long long)ws->rec[i].ino, ws->rec[i].pgoff);
	return fclose(out) ? -errno : 0;
}

/*
 * Context: space teardown, before the files go (filemap_destroy()): the
 * replayer stops, the record is written.
 */
void ws_destroy(struct fl_space *sp)
{
	struct ws_state *ws = sp->ws;
	int ret;

	if (!ws)
		return;
	worker_stop(&ws->replayer);
	if (ws->rec) {
		ret = ws_write(ws);
		if (ret)
			fl_log("cannot write the working set to %s: %s", ws->record_path,
			       strerror(-ret));
		munmap(ws->rec, ws->rec_cap * sizeof(*ws->rec));
	}
	free(ws->record_path);
	free(ws->plan);
	free(ws);
	sp->ws = NULL;
}
