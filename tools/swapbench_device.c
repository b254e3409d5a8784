// SPDX-License-Identifier: MIT
/*
 * swapbench's store device (see swapbench.h): the file system and disk the
 * stores are on, the disk's counters, the probe file (written with the
 * pattern the bare anchor checks), and the "device" subject: random 4 KiB
 * O_DIRECT reads through io_uring at queue depth T, the disk's limit.
 */
#define _GNU_SOURCE
#define TOOL "swapbench"
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "kside.h"
#include "swapbench.h"

void sb_identify_store(struct swapbench *sb)
{
	static const struct {
		unsigned long magic;
		const char *name;
	} fs[] = {
		{0xEF53, "ext4"},
		{0x58465342, "xfs"},
		{0x9123683E, "btrfs"},
		{0x01021994, "tmpfs"},
	};
	const struct sb_opts *opt = &sb->opt;
	size_t i;
	struct statfs sfs;
	struct stat st;
	struct dstat d;

	if (stat(opt->dir, &st) || !S_ISDIR(st.st_mode)) {
		fprintf(stderr, "swapbench: %s is not a directory\n", opt->dir);
		exit(2);
	}
	sb->store.dev = st.st_dev;
	fmt(sb->store.fstype, sizeof(sb->store.fstype), "fs");
	if (!statfs(opt->dir, &sfs)) {
		fmt(sb->store.fstype, sizeof(sb->store.fstype), "fs %#lx",
		    (unsigned long)sfs.f_type);
		for (i = 0; i < ARRAY_SIZE(fs); i++)
			if (fs[i].magic == (unsigned long)sfs.f_type)
				fmt(sb->store.fstype, sizeof(sb->store.fstype), "%s", fs[i].name);
	}
	sb_read_disk(sb, &d);
}

void sb_read_disk(struct swapbench *sb, struct dstat *d)
{
	char buf[16384], name[64], *p;
	unsigned int maj, mnr;
	unsigned long long v[7];

	memset(d, 0, sizeof(*d));
	if (ks_read_file("/proc/diskstats", buf, sizeof(buf)))
		return;
	for (p = buf; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
		if (sscanf(p, " %u %u %63s %llu %llu %llu %llu %llu %llu %llu", &maj, &mnr, name,
			   &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6]) != 10)
			continue;
		if (maj != major(sb->store.dev) || mnr != minor(sb->store.dev))
			continue;
		d->ok = true;
		d->rd_ios = v[0];
		d->rd_sect = v[2];
		d->wr_ios = v[4];
		d->wr_sect = v[6];
		if (!sb->store.disk_found) {
			fmt(sb->store.disk, sizeof(sb->store.disk), "%s", name);
			sb->store.disk_found = true;
		}
		return;
	}
}

/*
 * A file of --region bytes, written (not just allocated), O_DIRECT, for the
 * device probe and the bare anchor.  Its block b holds what page b of the
 * region holds (sb_expected(salt, b, word)): the bare anchor checks what it reads.
 * Return: 0 or a negative errno with err set (then no file is left open).
 */
int sb_probe_prepare(struct swapbench *sb, char *err, size_t errlen)
{
	const struct sb_opts *opt = &sb->opt;
	size_t chunk = 1UL << 20, off;
	uint64_t *buf, salt = sb_salt_of(opt->seed);
	unsigned int i;
	int ret = 0;

	if (sb->probe.ready)
		return 0;
	sb->probe.fd = open(opt->dir, O_TMPFILE | O_RDWR | O_DIRECT | O_CLOEXEC, 0600);
	if (sb->probe.fd < 0) {
		fmt(err, errlen, "O_TMPFILE|O_DIRECT in %s: %s", opt->dir, strerror(errno));
		return -errno;
	}
	if (posix_memalign((void **)&buf, PAGE, chunk)) {
		fmt(err, errlen, "out of memory");
		ret = -ENOMEM;
		goto fail;
	}
	for (off = 0; off < opt->region; off += chunk) {
		size_t n = opt->region - off < chunk ? opt->region - off : chunk;

		for (i = 0; i < n / 8; i++)
			buf[i] = sb_expected(salt, (off / 8 + i) / WORDS, i % WORDS);
		if (pwrite(sb->probe.fd, buf, n, (off_t)off) != (ssize_t)n) {
			fmt(err, errlen, "writing the probe file: %s",
			    strerror(errno ? errno : EIO));
			free(buf);
			ret = -EIO;
			goto fail;
		}
	}
	free(buf);
	if (fsync(sb->probe.fd)) {
		ret = -errno;
		fmt(err, errlen, "fsync of the probe file: %s", strerror(errno));
		goto fail;
	}
	sb->probe.pages = opt->region / PAGE;
	sb->probe.ready = true;
	return 0;

fail:
	close(sb->probe.fd);
	sb->probe.fd = -1;
	return ret;
}

struct pio {
	uint64_t t;
	char *buf;
};

static int run_probe(struct swapbench *sb, unsigned int qd, unsigned int round, struct window *w,
		     char *err, size_t errlen)
{
	const struct sb_opts *opt = &sb->opt;
	struct io_uring ring;
	struct io_uring_cqe *cqe;
	struct pio *io;
	char *bufs;
	uint64_t rng = sb_reader_seed(opt->seed, qd, 0xd0, round), t0 = 0, tprev = 0, tend = 0,
		 opsp = 0, twarm;
	unsigned int i, inflight = 0;
	int phase = 0, ret;

	memset(w, 0, sizeof(*w));
	ret = io_uring_queue_init(qd < 8 ? 8 : qd, &ring, 0);
	if (ret) {
		fmt(err, errlen, "io_uring_queue_init: %s", strerror(-ret));
		return ret;
	}
	io = calloc(qd, sizeof(*io));
	if (!io || posix_memalign((void **)&bufs, PAGE, qd * PAGE)) {
		free(io);
		io_uring_queue_exit(&ring);
		return -ENOMEM;
	}
	for (i = 0; i < qd; i++) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);

		io[i].buf = bufs + i * PAGE;
		io[i].t = now_ns();
		io_uring_prep_read(sqe, sb->probe.fd, io[i].buf, PAGE,
				   below(splitmix64(&rng), sb->probe.pages) * PAGE);
		io_uring_sqe_set_data(sqe, &io[i]);
		inflight++;
	}
	io_uring_submit(&ring);
	twarm = now_ns() + (uint64_t)(opt->warmup * 1e9);
	sb_sampler_snap(&(struct sampler){.sb = sb, .kind = K_DEVICE}, w, false);
	while (inflight) {
		uint64_t t;

		ret = io_uring_wait_cqe(&ring, &cqe);
		if (ret == -EINTR)
			continue;
		if (ret < 0) {
			fmt(err, errlen, "io_uring_wait_cqe: %s", strerror(-ret));
			break;
		}
		do {
			struct pio *p = io_uring_cqe_get_data(cqe);
			int res = cqe->res;

			io_uring_cqe_seen(&ring, cqe);
			inflight--;
			t = now_ns();
			if (res != (int)PAGE) {
				fmt(err, errlen, "probe read: %s",
				    res < 0 ? strerror(-res) : "short read");
				ret = res < 0 ? res : -EIO;
				phase = 2;
			}
			if (phase == 1) {
				hist_add(&w->h, t - p->t);
				w->ops++;
			}
			if (phase < 2) {
				struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);

				p->t = now_ns();
				io_uring_prep_read(sqe, sb->probe.fd, p->buf, PAGE,
						   below(splitmix64(&rng), sb->probe.pages) * PAGE);
				io_uring_sqe_set_data(sqe, p);
				inflight++;
			}
		} while (io_uring_peek_cqe(&ring, &cqe) == 0);
		io_uring_submit(&ring);
		t = now_ns();
		if (phase == 0 && t >= twarm) {
			phase = 1;
			t0 = tprev = t;
			tend = t0 +
			       (uint64_t)((opt->probe_seconds ? opt->probe_seconds : opt->seconds) *
					  1e9);
			w->ops = opsp = 0;
			sb_sampler_snap(&(struct sampler){.sb = sb, .kind = K_DEVICE}, w, false);
		} else if (phase == 1 && (t >= tprev + IVL_NS || t >= tend)) {
			if (w->nivl < MAX_IVL && (t < tend || t - tprev > IVL_NS / 2)) {
				w->ivl_ops[w->nivl] = (float)((double)(w->ops - opsp) * 1e9 /
							      (double)(t - tprev));
				w->ivl_miss[w->nivl] = w->ivl_ops[w->nivl];
				w->nivl++;
			}
			opsp = w->ops;
			tprev = t;
			if (t >= tend) {
				w->secs = (double)(t - t0) / 1e9;
				phase = 2;
			}
		}
	}
	sb_sampler_snap(&(struct sampler){.sb = sb, .kind = K_DEVICE}, w, true);
	free(bufs);
	free(io);
	io_uring_queue_exit(&ring);
	if (ret < 0)
		return ret;
	w->misses = w->ops;
	w->done = true;
	return 0;
}

void sb_run_device(struct swapbench *sb, struct subject *sub, unsigned int round)
{
	const struct sb_opts *opt = &sb->opt;
	unsigned int i;
	int err;

	err = sb_probe_prepare(sb, sub->error, sizeof(sub->error));
	if (err) {
		sub->failed = true;
		return;
	}
	for (i = 0; i < opt->nthreads; i++) {
		char name[64];

		fmt(name, sizeof(name), "device.qd%u", opt->threads[i]);
		ks_watchdog(opt->timeout, name);
		err = run_probe(sb, opt->threads[i], round, W(sub, 1 + i, round), sub->error,
				sizeof(sub->error));
		alarm(0);
		if (err) {
			sub->failed = true;
			return;
		}
		if (opt->verbose)
			fprintf(stderr, "  %-24s %10.0f IOPS\n", name,
				(double)W(sub, 1 + i, round)->ops / W(sub, 1 + i, round)->secs);
	}
}
