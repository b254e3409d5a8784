// SPDX-License-Identifier: MIT
/*
 * filebench: faultline's file mappings (fl_mmap() of a file, its own page
 * cache under a memory budget) against the kernel's mmap of the same file
 * in a cgroup v1 memory group of the same limit, in the same run.  A
 * benchmark, not a test: it asserts nothing about speed, it reports ratios.
 * See BENCHMARKS.md, section "Files".
 *
 * The files: a data file (default 1 GiB) and a snapshot file of the same
 * size, both written with pseudo-random words from --seed in --dir (default
 * $TMPDIR or /tmp: this machine's disk), unlinked at once, so that they go
 * with the process however it ends.  The workloads (filebench_run.c):
 * random reads with T threads, one sequential pass, random writes to a
 * shared mapping followed by msync(MS_SYNC), and the restore of a working
 * set (default 64 MiB) of the snapshot, with and without faultline's
 * working-set replay (recorded once, by a first faultline run, before the
 * rounds).
 *
 * Subjects, each run in a fresh child process after sync and drop_caches:
 *
 *   kernel               plain mmap(2), the child in the memory cgroup
 *                        /sys/fs/cgroup/memory/faultline-filebench-PID
 *                        (memory.limit_in_bytes = the budget; no swap)
 *   fl-DELIVERY[-POLICY] fl_mmap() in a space with mem_limit = the budget
 *   ...-replay           (the restore) with FAULTLINE_WS_REPLAY
 *
 * Within a round the subjects of a figure run one after the other, every
 * other round in reverse order; each faultline figure is a ratio to the
 * kernel's of the same round, and the table gives the medians over the
 * rounds with their spread.
 */
#define _GNU_SOURCE
#define TOOL "filebench"
#include <inttypes.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>

#include "filebench.h"

static const struct fb_opts defaults = {
	.file_size = 1UL << 30,
	.budget = 256UL << 20,
	.ws_size = 64UL << 20,
	.write_pages = 32768,
	.seconds = 10,
	.warmup = 2,
	.threads = {1, 2, 4, 8},
	.nthreads = 4,
	.deliveries = {FL_DELIVERY_THREAD, FL_DELIVERY_SIGBUS},
	.ndeliveries = 2,
	.rounds = 1,
	.seed = 1,
	.drop = DROP_ALL,
	.do_kernel = true,
	.do_faultline = true,
	.do_rand = true,
	.do_seq = true,
	.do_write = true,
	.do_restore = true,
	.timeout = 900,
};

static void usage(FILE *out)
{
	fprintf(out,
		"usage: filebench [options]   (as root: drop_caches and the memory cgroup)\n"
		"  -f, --file-size SIZE   the data and snapshot files (default 1G)\n"
		"  -b, --budget SIZE      faultline's mem_limit = the cgroup's limit (256M)\n"
		"      --ws SIZE          the restore's working set (64M)\n"
		"      --write-pages N    distinct random pages the writes store to (32768)\n"
		"  -s, --seconds S        random reads: the timed window (10)\n"
		"  -w, --warmup S         random reads: untimed before it (2)\n"
		"  -t, --threads LIST     random reads: thread counts (1,2,4,8)\n"
		"  -d, --delivery LIST    faultline's deliveries (thread,sigbus)\n"
		"  -p, --policy LIST      faultline's policies (default: its default only)\n"
		"      --only LIST        of rand,seq,write,restore (all)\n"
		"      --rounds N         (1; at most %d)\n"
		"      --seed N           the files' contents and the access pattern (1)\n"
		"      --dir DIR          where the files go ($TMPDIR or /tmp)\n"
		"      --drop HOW         before each run: all (sync; drop_caches=3, root),\n"
		"                         file (fdatasync + POSIX_FADV_DONTNEED of our files),\n"
		"                         none (default all)\n"
		"      --no-kernel, --no-faultline\n"
		"      --quick            a quick run: 64M files, 16M budget, 4M working set,\n"
		"                         1,2 threads, 0.5 s windows (later options override)\n"
		"      --timeout S        per run; then it is killed and everything cleaned (%u)\n"
		"      --perf-ctl FIFO    write enable/disable to it around each measured run:\n"
		"                         perf record -D -1 --control fifo:FIFO profiles the runs\n"
		"  -v, --verbose\n",
		MAX_ROUNDS, defaults.timeout);
}

static size_t parse_size(const char *s, const char *what)
{
	char *end;
	unsigned long long v;
	int shift = 0;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (!errno && end != s && *end) {
		shift = strchr("kK", *end)   ? 10
			: strchr("mM", *end) ? 20
			: strchr("gG", *end) ? 30
					     : -1;
		if (shift > 0)
			end++;
		else
			shift = 0;
	}
	if (errno || end == s || *end || v == 0 || v > (1ull << 40) >> shift ||
	    ((v << shift) % PAGE)) {
		fprintf(stderr, "filebench: bad %s '%s' (a multiple of 4 KiB; K/M/G)\n", what, s);
		exit(2);
	}
	return (size_t)(v << shift);
}

static int word_threads(const char *s)
{
	return (int)parse_num(s, "thread count", 1, MAX_THREADS);
}

static int word_phase(const char *s)
{
	static const char *const names[] = {"rand", "seq", "write", "restore"};

	for (int i = 0; i < 4; i++)
		if (!strcmp(s, names[i]))
			return i;
	return -1;
}

static void set_threads(struct fb_opts *opt, const char *arg)
{
	int list[MAX_TLIST];

	opt->nthreads = parse_list(arg, "thread counts", list, MAX_TLIST, word_threads, true);
	for (unsigned int i = 0; i < opt->nthreads; i++)
		opt->threads[i] = (unsigned int)list[i];
}

static void set_only(struct fb_opts *opt, const char *arg)
{
	int list[4];
	unsigned int n = parse_list(arg, "phases", list, 4, word_phase, true);

	opt->do_rand = opt->do_seq = opt->do_write = opt->do_restore = false;
	for (unsigned int i = 0; i < n; i++)
		*(bool *[]){&opt->do_rand, &opt->do_seq, &opt->do_write,
			    &opt->do_restore}[list[i]] = true;
}

static enum fb_drop parse_drop(const char *s)
{
	if (!strcmp(s, "all"))
		return DROP_ALL;
	if (!strcmp(s, "file"))
		return DROP_FILE;
	if (!strcmp(s, "none"))
		return DROP_NONE;
	fprintf(stderr, "filebench: bad --drop '%s' (all, file, none)\n", s);
	exit(2);
}

enum {
	OPT_WS = 256,
	OPT_WRITE_PAGES,
	OPT_ONLY,
	OPT_ROUNDS,
	OPT_SEED,
	OPT_DIR,
	OPT_DROP,
	OPT_NO_KERNEL,
	OPT_NO_FAULTLINE,
	OPT_QUICK,
	OPT_TIMEOUT,
	OPT_PERF_CTL,
};

#define FILEBENCH_OPTIONS(X)                                                                     \
	X("file-size", 'f', required_argument, opt->file_size = parse_size(optarg, "file size")) \
	X("budget", 'b', required_argument, opt->budget = parse_size(optarg, "budget"))          \
	X("ws", OPT_WS, required_argument, opt->ws_size = parse_size(optarg, "working set"))     \
	X("write-pages", OPT_WRITE_PAGES, required_argument,                                     \
	  opt->write_pages = parse_num(optarg, "write pages", 1, 1UL << 28))                     \
	X("seconds", 's', required_argument,                                                     \
	  opt->seconds = parse_real(optarg, "seconds", 0.05, 86400))                             \
	X("warmup", 'w', required_argument,                                                      \
	  opt->warmup = parse_real(optarg, "warm-up seconds", 0, 86400))                         \
	X("threads", 't', required_argument, set_threads(opt, optarg))                           \
	X("policy", 'p', required_argument,                                                      \
	  opt->npolicies = parse_list(optarg, "policies", opt->policies, FL_POLICY_NR,           \
				      fl_policy_by_name, true))                                  \
	X("delivery", 'd', required_argument,                                                    \
	  opt->ndeliveries = parse_list(optarg, "deliveries", opt->deliveries, MAX_DELIVERIES,   \
					fl_delivery_by_name, true))                              \
	X("only", OPT_ONLY, required_argument, set_only(opt, optarg))                            \
	X("rounds", OPT_ROUNDS, required_argument,                                               \
	  opt->rounds = (unsigned int)parse_num(optarg, "rounds", 1, MAX_ROUNDS))                \
	X("seed", OPT_SEED, required_argument,                                                   \
	  opt->seed = parse_num(optarg, "seed", 0, ULONG_MAX))                                   \
	X("dir", OPT_DIR, required_argument, fmt(opt->dir, sizeof(opt->dir), "%s", optarg))      \
	X("drop", OPT_DROP, required_argument, opt->drop = parse_drop(optarg))                   \
	X("no-kernel", OPT_NO_KERNEL, no_argument, opt->do_kernel = false)                       \
	X("no-faultline", OPT_NO_FAULTLINE, no_argument, opt->do_faultline = false)              \
	X("quick", OPT_QUICK, no_argument, opt->quick = true)                                    \
	X("timeout", OPT_TIMEOUT, required_argument,                                             \
	  opt->timeout = (unsigned int)parse_num(optarg, "timeout", 1, 86400))                   \
	X("perf-ctl", OPT_PERF_CTL, required_argument,                                           \
	  fmt(opt->perf_ctl, sizeof(opt->perf_ctl), "%s", optarg))                               \
	X("verbose", 'v', no_argument, opt->verbose = true)

static void parse_args(struct fb_opts *opt, int argc, char **argv)
{
	const char *tmp;

	*opt = defaults;
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--quick")) {
			opt->file_size = 64UL << 20;
			opt->budget = 16UL << 20;
			opt->ws_size = 4UL << 20;
			opt->write_pages = 1024;
			opt->seconds = 0.5;
			opt->warmup = 0.2;
			opt->threads[0] = 1;
			opt->threads[1] = 2;
			opt->nthreads = 2;
			opt->timeout = 120;
		}
	parse_options(FILEBENCH_OPTIONS, argc, argv, usage);
	no_operands(argc, argv);
	if (opt->budget < 64 * PAGE || opt->budget >= opt->file_size ||
	    opt->ws_size > opt->file_size || opt->write_pages > opt->file_size / PAGE) {
		fprintf(stderr,
			"filebench: the budget must be at least 256 KiB and smaller than "
			"the file; the working set and the written pages at most the file\n");
		exit(2);
	}
	if (!opt->dir[0]) {
		tmp = getenv("TMPDIR");
		fmt(opt->dir, sizeof(opt->dir), "%s", tmp && *tmp ? tmp : "/tmp");
	}
	/* faultline's swap store (unused here, but created) goes to $TMPDIR. */
	setenv("TMPDIR", opt->dir, 1);
}

/* ---- The files ---- */

/* A file of the given words in dir, unlinked: it lives as long as a descriptor does. */
static int make_file(struct filebench *fb, uint64_t which)
{
	const size_t chunk = 1UL << 20;
	uint64_t *buf = malloc(chunk);
	char path[PATH_MAX + 64];
	int fd = open(fb->opt.dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);

	if (fd < 0) {
		fmt(path, sizeof(path), "%s/faultline-filebench-%d-%" PRIu64, fb->opt.dir,
		    (int)getpid(), which);
		fd = open(path, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600);
		if (fd >= 0)
			unlink(path);
	}
	if (fd < 0 || !buf) {
		fprintf(stderr, "filebench: cannot create a file in %s: %s\n", fb->opt.dir,
			strerror(errno));
		exit(2);
	}
	for (size_t off = 0; off < fb->npages * PAGE; off += chunk) {
		size_t len = fb->npages * PAGE - off < chunk ? fb->npages * PAGE - off : chunk;

		for (size_t i = 0; i < len / sizeof(uint64_t); i++)
			buf[i] = fb_word(fb->opt.seed, which, (off / PAGE) + i / WORDS, i % WORDS);
		if (pwrite(fd, buf, len, (off_t)off) != (ssize_t)len) {
			fprintf(stderr, "filebench: writing the %s file: %s\n",
				which ? "snapshot" : "data", strerror(errno));
			exit(2);
		}
	}
	if (fsync(fd)) {
		fprintf(stderr, "filebench: fsync: %s\n", strerror(errno));
		exit(2);
	}
	free(buf);
	return fd;
}

/* The first n of a random permutation of [0, npages). */
static uint32_t *random_pages(size_t npages, size_t n, uint64_t seed)
{
	uint32_t *a = malloc(npages * sizeof(*a));

	if (!a) {
		fprintf(stderr, "filebench: out of memory\n");
		exit(2);
	}
	for (size_t i = 0; i < npages; i++)
		a[i] = (uint32_t)i;
	for (size_t i = 0; i < n; i++) {
		size_t j = i + below(splitmix64(&seed), npages - i);
		uint32_t t = a[i];

		a[i] = a[j];
		a[j] = t;
	}
	return a;
}

static void find_disk(struct filebench *fb)
{
	struct stat st;
	char line[512], name[64];
	unsigned int ma, mi;
	FILE *fp;

	if (stat(fb->opt.dir, &st))
		return;
	fb->dev_major = major(st.st_dev);
	fb->dev_minor = minor(st.st_dev);
	fmt(fb->dev_name, sizeof(fb->dev_name), "%u:%u", fb->dev_major, fb->dev_minor);
	fp = fopen("/proc/diskstats", "re");
	while (fp && fgets(line, sizeof(line), fp))
		if (sscanf(line, "%u %u %63s", &ma, &mi, name) == 3 && ma == fb->dev_major &&
		    mi == fb->dev_minor)
			fmt(fb->dev_name, sizeof(fb->dev_name), "%s", name);
	if (fp)
		fclose(fp);
}

static void drop_caches(struct filebench *fb)
{
	if (fb->opt.drop == DROP_NONE)
		return;
	if (fb->opt.drop == DROP_ALL) {
		sync();
		if (!ks_write_str("/proc/sys/vm/drop_caches", "3"))
			return;
		fb->drop_fell_back = true;
	}
	for (int i = 0; i < 2; i++) {
		int fd = i ? fb->snap_fd : fb->data_fd;

		fdatasync(fd);
		posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
	}
}

/* ---- Figures and subjects ---- */

static void add_subject(struct fb_fig *fig, const char *name, enum fb_kind kind, int delivery,
			int policy, bool replay)
{
	struct fb_subject *s = &fig->subjects[fig->nsubjects++];

	fmt(s->name, sizeof(s->name), "%s", name);
	s->kind = kind;
	s->delivery = delivery;
	s->policy = policy;
	s->replay = replay;
}

static void add_fig(struct filebench *fb, enum fb_phase ph, unsigned int threads)
{
	static const char *const names[] = {"rand", "seq", "write", "restore"};
	const struct fb_opts *opt = &fb->opt;
	struct fb_fig *fig = &fb->figs[fb->nfigs++];
	unsigned int np = opt->npolicies ? opt->npolicies : 1;
	char name[48];

	fig->ph = ph;
	fig->threads = threads;
	if (ph == PH_RAND)
		fmt(fig->name, sizeof(fig->name), "rand.t%u", threads);
	else
		fmt(fig->name, sizeof(fig->name), "%s", names[ph]);
	if (opt->do_kernel)
		add_subject(fig, "kernel", S_KERNEL, 0, -1, false);
	for (unsigned int d = 0; opt->do_faultline && d < opt->ndeliveries; d++)
		for (unsigned int p = 0; p < np; p++)
			for (int replay = 0; replay <= (ph == PH_RESTORE); replay++) {
				int policy = opt->npolicies ? opt->policies[p] : -1;

				fmt(name, sizeof(name), "fl-%s%s%s%s",
				    fl_delivery_name(opt->deliveries[d]), policy >= 0 ? "-" : "",
				    policy >= 0 ? fl_policy_name(policy) : "",
				    replay ? "-replay" : "");
				add_subject(fig, name, S_FL, opt->deliveries[d], policy, replay);
			}
	fig->res = calloc((size_t)fig->nsubjects * opt->rounds, sizeof(*fig->res));
	if (!fig->res) {
		fprintf(stderr, "filebench: out of memory\n");
		exit(2);
	}
}

static void build_figs(struct filebench *fb)
{
	const struct fb_opts *opt = &fb->opt;

	for (unsigned int i = 0; opt->do_rand && i < opt->nthreads; i++)
		add_fig(fb, PH_RAND, opt->threads[i]);
	if (opt->do_seq)
		add_fig(fb, PH_SEQ, 1);
	if (opt->do_write)
		add_fig(fb, PH_WRITE, 1);
	if (opt->do_restore)
		add_fig(fb, PH_RESTORE, 1);
}

/* ---- Runs ---- */

/* The written pages, read back from the disk (O_DIRECT where it is taken). */
static int verify_writes(struct filebench *fb, uint64_t tag, char *err, size_t len)
{
	char path[64];
	void *buf = NULL;
	int fd, ret = 0;

	fmt(path, sizeof(path), "/proc/self/fd/%d", fb->data_fd);
	fd = open(path, O_RDONLY | O_DIRECT | O_CLOEXEC);
	if (fd < 0)
		fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || posix_memalign(&buf, PAGE, PAGE)) {
		fmt(err, len, "cannot read the file back: %s", strerror(errno));
		return -1;
	}
	for (size_t i = 0; i < fb->opt.write_pages && !ret; i++) {
		size_t page = fb->wpages[i];
		const uint64_t *w = buf;

		if (pread(fd, buf, PAGE, (off_t)(page * PAGE)) != (ssize_t)PAGE) {
			fmt(err, len, "reading page %zu back: %s", page, strerror(errno));
			ret = -1;
		} else if (w[TAG_WORD] != fb_tag(tag, page) ||
			   w[0] != fb_word(fb->opt.seed, 0, page, 0)) {
			fmt(err, len,
			    "NOT DURABLE: page %zu holds %#" PRIx64 " (word 0 %#" PRIx64
			    ") after msync(MS_SYNC), expected %#" PRIx64,
			    page, w[TAG_WORD], w[0], fb_tag(tag, page));
			ret = -1;
		}
	}
	free(buf);
	close(fd);
	return ret;
}

/* The kernel's cgroup: its peak usage since the last reset, in MiB. */
static double cg_peak(bool reset)
{
	char path[PATH_MAX + 40];

	fmt(path, sizeof(path), "%s/memory.max_usage_in_bytes", ks_kern.cg_path);
	if (reset) {
		ks_write_str(path, "0");
		return 0;
	}
	return (double)ks_read_long(path, 0) / (1 << 20);
}

/* perf record's control FIFO (--perf-ctl): "enable" or "disable". */
static void perf_ctl(struct filebench *fb, const char *cmd)
{
	if (fb->perf_fd >= 0 && write(fb->perf_fd, cmd, strlen(cmd)) < 0)
		fprintf(stderr, "filebench: --perf-ctl: %s\n", strerror(errno));
}

/* One run of sub on fig in a fresh child; its result into *out. */
static void run_one(struct filebench *fb, const struct fb_fig *fig, const struct fb_subject *sub,
		    const char *ws_record, struct fb_result *out, double *peak_mib)
{
	static uint64_t tag;
	struct fb_result *r = fb->shared;
	char what[96];
	int status = 0;
	pid_t pid;

	memset(r, 0, sizeof(*r));
	tag++;
	if (sub->kind == S_KERNEL && !ks_kern.prepared) {
		fmt(r->error, sizeof(r->error), "kernel side unavailable: %s", ks_kern.error);
		*out = *r;
		return;
	}
	drop_caches(fb);
	if (sub->kind == S_KERNEL)
		cg_peak(true);
	fmt(what, sizeof(what), "%s %s", fig->name, sub->name);
	if (!ws_record)
		perf_ctl(fb, "enable\n");
	pid = ks_fork();
	if (pid < 0) {
		fmt(r->error, sizeof(r->error), "fork: %s", strerror(errno));
		*out = *r;
		return;
	}
	if (pid == 0) {
		if (sub->kind == S_KERNEL && ks_join_cgroup()) {
			fmt(r->error, sizeof(r->error), "joining the cgroup failed");
			_exit(1);
		}
		fb_child(fb, fig, sub, tag, ws_record, r);
		_exit(0);
	}
	if (ks_wait(pid, &status, fb->opt.timeout, what))
		fmt(r->error, sizeof(r->error), "waitpid failed");
	if (!ws_record)
		perf_ctl(fb, "disable\n");
	else if (WIFSIGNALED(status))
		fmt(r->error, sizeof(r->error), "killed by signal %d%s", WTERMSIG(status),
		    sub->kind == S_KERNEL && ks_oom_kills() ? " (the cgroup's OOM killer)" : "");
	else if (!r->done && !r->error[0])
		fmt(r->error, sizeof(r->error), "exit status %d", WEXITSTATUS(status));
	if (r->done && fig->ph == PH_WRITE && verify_writes(fb, tag, r->error, sizeof(r->error)))
		r->done = 0;
	*peak_mib = sub->kind == S_KERNEL ? cg_peak(false) : (double)r->maxrss_kb / 1024;
	*out = *r;
}

static void progress(const struct fb_fig *fig, const struct fb_subject *sub,
		     const struct fb_result *r, unsigned int round, unsigned int rounds)
{
	fprintf(stderr, "filebench: round %u/%u: %-8s %-20s ", round + 1, rounds, fig->name,
		sub->name);
	if (!r->done)
		fprintf(stderr, "FAILED: %s\n", r->error);
	else if (fig->ph == PH_RESTORE)
		fprintf(stderr, "%.3f s, %" PRIu64 " major faults\n", r->secs,
			r->has_fl ? r->fl.file_faults_major : r->majflt);
	else
		fprintf(stderr, "%.0f %s/s, CPU %.2f us each\n", (double)r->ops / r->secs,
			fig->ph == PH_RAND ? "accesses" : "pages", r->cpu * 1e6 / (double)r->ops);
}

/* The working set, recorded by a faultline run (thread delivery) before the rounds. */
static void record_ws(struct filebench *fb, const struct fb_fig *fig)
{
	struct fb_subject rec = {
		.name = "record", .kind = S_FL, .delivery = FL_DELIVERY_THREAD, .policy = -1};
	struct fb_result r;
	double peak;
	char line[128];
	FILE *fp;

	fmt(fb->ws_path, sizeof(fb->ws_path), "%s/faultline-filebench-ws-%d", fb->opt.dir,
	    (int)getpid());
	ks_unlink_at_cleanup(fb->ws_path);
	run_one(fb, fig, &rec, fb->ws_path, &r, &peak);
	progress(fig, &rec, &r, 0, 1);
	fp = fopen(fb->ws_path, "re");
	while (fp && fgets(line, sizeof(line), fp))
		fb->ws_recorded++;
	if (fp)
		fclose(fp);
	if (fb->ws_recorded)
		fb->ws_recorded--; /* the header */
}

/* ---- Summaries ---- */

struct summ {
	unsigned int n, nr;
	double v, vmin, vmax;	 /* the figure: rate, or seconds for the restore */
	double x, xmin, xmax;	 /* its ratio to the kernel's of the same round, >1 better */
	double cpu_us, p50, p99; /* per access or page */
	double maj, rd, rd_kib, wr_kib, peak, store, sync, replayed;
};

static double fig_value(const struct fb_fig *fig, const struct fb_result *r)
{
	return fig->ph == PH_RESTORE ? r->secs : (double)r->ops / r->secs;
}

static void summarise(const struct filebench *fb, const struct fb_fig *fig, unsigned int s,
		      const double *peaks, struct summ *out)
{
	unsigned int rounds = fb->opt.rounds, n = 0, nr = 0;
	double v[MAX_ROUNDS], x[MAX_ROUNDS], cpu[MAX_ROUNDS], p50[MAX_ROUNDS], p99[MAX_ROUNDS],
		maj[MAX_ROUNDS], rd[MAX_ROUNDS], rdk[MAX_ROUNDS], wrk[MAX_ROUNDS], pk[MAX_ROUNDS],
		st[MAX_ROUNDS], sy[MAX_ROUNDS], rp[MAX_ROUNDS];
	int k = -1;

	memset(out, 0, sizeof(*out));
	for (unsigned int i = 0; i < fig->nsubjects; i++)
		if (fig->subjects[i].kind == S_KERNEL)
			k = (int)i;
	out->xmin = out->vmin = INFINITY;
	for (unsigned int r = 0; r < rounds; r++) {
		const struct fb_result *res = &fig->res[s * rounds + r];
		double ops = res->ops ? (double)res->ops : 1;

		if (!res->done || res->secs <= 0)
			continue;
		v[n] = fig_value(fig, res);
		out->vmin = fmin(out->vmin, v[n]);
		out->vmax = fmax(out->vmax, v[n]);
		cpu[n] = res->cpu * 1e6 / ops;
		p50[n] = (double)res->p50_ns / 1e3;
		p99[n] = (double)res->p99_ns / 1e3;
		maj[n] = (double)(res->has_fl ? res->fl.file_faults_major : res->majflt);
		if (fig->ph != PH_RESTORE)
			maj[n] /= ops;
		rd[n] = (double)res->disk.rd / (fig->ph == PH_RESTORE ? 1 : ops);
		rdk[n] = res->disk.rd ? (double)res->disk.rd_sect / 2 / (double)res->disk.rd : 0;
		wrk[n] = res->disk.wr ? (double)res->disk.wr_sect / 2 / (double)res->disk.wr : 0;
		pk[n] = peaks[s * rounds + r];
		st[n] = res->store_secs;
		sy[n] = res->sync_secs;
		rp[n] = res->has_fl ? (double)res->fl.ws_replayed : 0;
		if (k >= 0 && fig->res[(unsigned int)k * rounds + r].done) {
			double kv = fig_value(fig, &fig->res[(unsigned int)k * rounds + r]);

			x[nr] = fig->ph == PH_RESTORE ? kv / v[n] : v[n] / kv;
			out->xmin = fmin(out->xmin, x[nr]);
			out->xmax = fmax(out->xmax, x[nr]);
			nr++;
		}
		n++;
	}
	out->n = n;
	out->nr = nr;
	out->v = median(v, n);
	out->x = median(x, nr);
	out->cpu_us = median(cpu, n);
	out->p50 = median(p50, n);
	out->p99 = median(p99, n);
	out->maj = median(maj, n);
	out->rd = median(rd, n);
	out->rd_kib = median(rdk, n);
	out->wr_kib = median(wrk, n);
	out->peak = median(pk, n);
	out->store = median(st, n);
	out->sync = median(sy, n);
	out->replayed = median(rp, n);
}

/* ---- The report ---- */

static const char *const headings[] = {
	[PH_RAND] = "RANDOM READS, %u thread%s: one verified 8-byte word of a uniformly random "
		    "page each; accesses/s, hits included",
	[PH_SEQ] = "SEQUENTIAL PASS: one thread reads a word of every page once, in address "
		   "order; pages/s",
	[PH_WRITE] = "RANDOM WRITES + MSYNC(MS_SYNC): one store to each of %zu distinct random "
		     "pages of a shared mapping, then msync of the whole; pages made durable/s",
	[PH_RESTORE] = "SNAPSHOT RESTORE: a fresh program touches a working set of %zu pages (%zu "
		       "MiB) of the snapshot in its recorded order; seconds to the last touch",
};

static void print_fig(const struct filebench *fb, const struct fb_fig *fig, const double *peaks)
{
	const struct fb_opts *opt = &fb->opt;
	bool restore = fig->ph == PH_RESTORE, write = fig->ph == PH_WRITE;

	printf("\n");
	if (fig->ph == PH_RAND)
		printf(headings[PH_RAND], fig->threads, fig->threads > 1 ? "s" : "");
	else if (write)
		printf(headings[PH_WRITE], opt->write_pages);
	else if (restore)
		printf(headings[PH_RESTORE], fb->ws_pages, fb->ws_pages * PAGE >> 20);
	else
		printf("%s", headings[PH_SEQ]);
	printf("\n%-18s %10s %21s %7s %15s %9s", "subject", restore ? "seconds" : "per s",
	       "min .. max", "x kern", "min .. max", "CPU us/op");
	if (restore)
		printf(" %9s %9s %8s %9s\n", "major", "disk rds", "KiB/rd", "replayed");
	else if (write)
		printf(" %8s %8s %9s %8s %8s %8s\n", "stores s", "msync s", "major/op", "KiB/rd",
		       "KiB/wr", "peak MiB");
	else
		printf(" %8s %8s %9s %9s %8s %8s\n", "p50 us", "p99 us", "major/op", "disk rd/op",
		       "KiB/rd", "peak MiB");
	for (unsigned int s = 0; s < fig->nsubjects; s++) {
		const struct fb_subject *sub = &fig->subjects[s];
		struct summ m;
		char x[16] = "-", xr[32] = "";

		summarise(fb, fig, s, peaks, &m);
		if (!m.n) {
			const struct fb_result *r = &fig->res[s * opt->rounds];

			printf("%-18s FAILED: %s\n", sub->name, r->error);
			continue;
		}
		if (m.nr) {
			fmt(x, sizeof(x), "%.3f", m.x);
			fmt(xr, sizeof(xr), "%.3f .. %.3f", m.xmin, m.xmax);
		}
		printf("%-18s %10.*f %10.*f .. %-7.*f %7s %15s %9.2f", sub->name, restore ? 3 : 0,
		       m.v, restore ? 3 : 0, m.vmin, restore ? 3 : 0, m.vmax, x, xr, m.cpu_us);
		if (restore)
			printf(" %9.0f %9.0f %8.1f %9.0f\n", m.maj, m.rd, m.rd_kib, m.replayed);
		else if (write)
			printf(" %8.3f %8.3f %9.3f %8.1f %8.1f %8.0f\n", m.store, m.sync, m.maj,
			       m.rd_kib, m.wr_kib, m.peak);
		else
			printf(" %8.1f %8.1f %9.3f %9.3f %8.1f %8.0f\n", m.p50, m.p99, m.maj, m.rd,
			       m.rd_kib, m.peak);
		if (m.n < opt->rounds)
			printf("%-18s   (%u of %u rounds failed: %s)\n", "", opt->rounds - m.n,
			       opt->rounds, fig->res[s * opt->rounds].error);
	}
}

/* faultline's counters of the median round, for the reading. */
static void print_counters(const struct filebench *fb, const struct fb_fig *fig)
{
	for (unsigned int s = 0; s < fig->nsubjects; s++) {
		const struct fb_result *r = NULL;

		for (unsigned int k = 0; k < fb->opt.rounds; k++)
			if (fig->res[s * fb->opt.rounds + k].done)
				r = &fig->res[s * fb->opt.rounds + k];
		if (!r || !r->has_fl)
			continue;
		printf("  %s (last round): file_faults_major %" PRIu64 " minor %" PRIu64
		       " wp %" PRIu64 ", file_reads %" PRIu64 ", fault_around_pages %" PRIu64
		       ", file_evictions %" PRIu64 ", file_writebacks %" PRIu64 ", faults %" PRIu64
		       ", parked %" PRIu64 ", handler_msgs_one %" PRIu64 ", fault p50 %.1f us\n",
		       fig->subjects[s].name, r->fl.file_faults_major, r->fl.file_faults_minor,
		       r->fl.file_faults_wp, r->fl.file_reads, r->fl.fault_around_pages,
		       r->fl.file_evictions, r->fl.file_writebacks, r->fl.faults, r->fl.parked,
		       r->fl.handler_msgs_one, (double)r->fl.fault_ns_p50 / 1e3);
	}
}

static void print_goals_and_bench(const struct filebench *fb, const double *const *peaks)
{
	printf("\n");
	for (unsigned int f = 0; f < fb->nfigs; f++) {
		const struct fb_fig *fig = &fb->figs[f];

		for (unsigned int s = 0; s < fig->nsubjects; s++) {
			struct summ m;

			summarise(fb, fig, s, peaks[f], &m);
			printf("BENCH filebench %s %s ok=%d value=%.6g x_kernel=%.4f cpu_us=%.3f\n",
			       fig->name, fig->subjects[s].name, m.n > 0, m.n ? m.v : 0,
			       m.nr ? m.x : 0, m.n ? m.cpu_us : 0);
			if (fig->subjects[s].kind != S_FL || fig->ph == PH_RESTORE)
				continue;
			if (!m.nr)
				printf("GOAL %s %s: no kernel figure to compare with (goal >= 1.0 "
				       "x "
				       "the kernel): UNKNOWN\n",
				       fig->name, fig->subjects[s].name);
			else
				printf("GOAL %s %s: %.3f x the kernel (goal >= 1.0): %s\n",
				       fig->name, fig->subjects[s].name, m.x,
				       m.x >= 1.0 ? "met" : "NOT MET");
		}
	}
}

int main(int argc, char **argv)
{
	struct filebench state = {.data_fd = -1, .snap_fd = -1, .perf_fd = -1};
	struct filebench *fb = &state;
	const struct fb_opts *opt = &fb->opt;
	double *peaks[MAX_FIGS];
	struct host_info host;
	struct cpu_times c0, c1;
	double load0[3] = {0}, load1[3] = {0}, elapsed;
	unsigned int failed = 0;
	uint64_t t0;

	parse_args(&fb->opt, argc, argv);
	if ((size_t)sysconf(_SC_PAGESIZE) != PAGE) {
		fprintf(stderr, "filebench: needs 4 KiB pages\n");
		return 2;
	}
	read_host(&host);
	ks_init("filebench", opt->verbose);
	if (opt->drop == DROP_ALL && geteuid()) {
		fprintf(stderr, "filebench: not root: --drop file instead of drop_caches\n");
		fb->opt.drop = DROP_FILE;
	}
	if (opt->perf_ctl[0] && (fb->perf_fd = open(opt->perf_ctl, O_WRONLY | O_CLOEXEC)) < 0) {
		fprintf(stderr, "filebench: --perf-ctl %s: %s\n", opt->perf_ctl, strerror(errno));
		return 2;
	}
	fb->npages = opt->file_size / PAGE;
	fb->ws_pages = opt->ws_size / PAGE;
	find_disk(fb);
	fb->shared = mmap(NULL, sizeof(*fb->shared), PROT_READ | PROT_WRITE,
			  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (fb->shared == MAP_FAILED) {
		fprintf(stderr, "filebench: mmap: %s\n", strerror(errno));
		return 2;
	}
	build_figs(fb);
	for (unsigned int f = 0; f < fb->nfigs; f++) {
		peaks[f] = calloc((size_t)fb->figs[f].nsubjects * opt->rounds, sizeof(double));
		if (!peaks[f])
			return 2;
	}
	if (opt->do_kernel && ks_kernel_prepare(opt->dir, 0, opt->budget, -1))
		fprintf(stderr, "filebench: kernel side unavailable: %s\n", ks_kern.error);
	fprintf(stderr, "filebench: writing the files (2 x %zu MiB) in %s\n", opt->file_size >> 20,
		opt->dir);
	fb->data_fd = make_file(fb, 0);
	fb->snap_fd = make_file(fb, 1);
	fb->wpages = random_pages(fb->npages, opt->write_pages, opt->seed ^ 0xa5a5);
	fb->ws_order = random_pages(fb->npages, fb->ws_pages, opt->seed ^ 0x5a5a);
	for (unsigned int f = 0; f < fb->nfigs; f++)
		if (fb->figs[f].ph == PH_RESTORE && opt->do_faultline)
			record_ws(fb, &fb->figs[f]);

	getloadavg(load0, 3);
	read_cpu_times(&c0, true);
	t0 = now_ns();
	for (unsigned int r = 0; r < opt->rounds; r++)
		for (unsigned int f = 0; f < fb->nfigs; f++) {
			struct fb_fig *fig = &fb->figs[f];

			for (unsigned int i = 0; i < fig->nsubjects; i++) {
				unsigned int s = r % 2 ? fig->nsubjects - 1 - i : i;
				struct fb_result *res = &fig->res[s * opt->rounds + r];

				run_one(fb, fig, &fig->subjects[s], NULL, res,
					&peaks[f][s * opt->rounds + r]);
				progress(fig, &fig->subjects[s], res, r, opt->rounds);
			}
		}
	elapsed = (double)(now_ns() - t0) / 1e9;
	read_cpu_times(&c1, true);
	getloadavg(load1, 3);
	ks_cleanup(); /* before printing: the machine is back as it was */

	print_host("filebench", &host);
	printf("files: data and snapshot, %zu MiB each (%zu pages), pseudo-random words, in %s "
	       "(disk %s, read_ahead_kb %ld); budget %zu MiB\n",
	       opt->file_size >> 20, fb->npages, opt->dir, fb->dev_name, ({
		       char p[96];
		       fmt(p, sizeof(p), "/sys/block/%s/queue/read_ahead_kb", fb->dev_name);
		       ks_read_long(p, -1);
	       }),
	       opt->budget >> 20);
	printf("random reads: %.1f s after %.1f s of warm-up; writes: %zu pages; restore: %zu "
	       "pages, %" PRIu64 " recorded; rounds %u (every other one reversed); seed %" PRIu64
	       "\n",
	       opt->seconds, opt->warmup, opt->write_pages, fb->ws_pages, fb->ws_recorded,
	       opt->rounds, opt->seed);
	printf("kernel: mmap(2) in the cgroup v1 memory group %s, limit %zu MiB, no swap%s\n",
	       ks_kern.prepared ? ks_kern.cg_path : "(unavailable)", opt->budget >> 20,
	       ks_kern.other_swaps[0] ? " of ours (another swap area is on!)" : "");
	printf("faultline: fl_mmap(), mem_limit %zu MiB, policy %s\n", opt->budget >> 20,
	       opt->npolicies ? "per subject" : "the default");
	printf("caches before every run: %s\n",
	       opt->drop == DROP_ALL	? (fb->drop_fell_back ? "drop_caches FAILED, fell back to "
								"fadvise"
							      : "sync; echo 3 > drop_caches")
	       : opt->drop == DROP_FILE ? "fdatasync + POSIX_FADV_DONTNEED of the two files"
					: "not dropped");
	printf("load average at start %.2f %.2f %.2f, at end %.2f %.2f %.2f\n", load0[0], load0[1],
	       load0[2], load1[0], load1[1], load1[2]);
	print_quiet(elapsed, (c1.busy - c0.busy) - (c1.self - c0.self), c1.steal - c0.steal);
	printf("x kern: the kernel's time or rate over the subject's, per round (> 1: faster); "
	       "CPU: the child's user+sys per access or page; peak: the cgroup's "
	       "max_usage (kernel), the child's max RSS (faultline)\n");
	for (unsigned int f = 0; f < fb->nfigs; f++) {
		print_fig(fb, &fb->figs[f], peaks[f]);
		print_counters(fb, &fb->figs[f]);
	}
	print_goals_and_bench(fb, (const double *const *)peaks);
	for (unsigned int f = 0; f < fb->nfigs; f++) {
		for (unsigned int i = 0; i < fb->figs[f].nsubjects * opt->rounds; i++)
			failed += !fb->figs[f].res[i].done;
		free(fb->figs[f].res);
		free(peaks[f]);
	}
	free(fb->wpages);
	free(fb->ws_order);
	close(fb->data_fd);
	close(fb->snap_fd);
	munmap(fb->shared, sizeof(*fb->shared));
	return failed ? 1 : 0;
}
