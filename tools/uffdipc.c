// SPDX-License-Identifier: MIT
/*
 * uffdipc: what serving page faults from another process costs, on the
 * bare userfaultfd path (no faultline), for the choice between handler
 * threads in the program and a supervisor process (README, "Not done";
 * BENCHMARKS.md, "Where the handler lives").
 *
 *   faults   1, 2, 4 threads of the program read one byte of each page of
 *            their own slice of a registered region (missing faults); one
 *            handler serves them with UFFDIO_COPY (a page of 0x5a) or
 *            UFFDIO_ZEROPAGE, either
 *              local:  a thread of the program, or
 *              remote: a supervisor process, forked at start before any
 *                      thread, that received the userfaultfd over a unix
 *                      socket with SCM_RIGHTS (as CRIU's lazy pages and
 *                      Firecracker's UFFD backend do).
 *            Faults/s, and CPU per fault: the faulting threads' (their
 *            thread clocks) and the handler's (its thread clock, or the
 *            supervisor's getrusage).  Each thread checks what it read.
 *   rtt      what the program's mm calls (fl_mmap, fl_munmap, ...) would
 *            cost as requests to a supervisor: a function call through a
 *            pointer against a request/reply round trip over a unix socket
 *            (SOCK_SEQPACKET and SOCK_STREAM, 48-byte request, 16-byte
 *            reply) to the supervisor.
 *   pageout  what reading a page to swap it out costs from the supervisor
 *            (process_vm_readv, a page at a time and 64 at a time) against
 *            memcpy in the program; and whether the supervisor can drop the
 *            program's pages itself (process_madvise(MADV_DONTNEED)).
 *
 * Rounds alternate local and remote; medians and min-max.  Lines starting
 * "BENCH " are one result each, key=value, for scripts and the smoke test.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_THREADS 8
#define MAX_ROUNDS 15
#define PATTERN 0x5a

static size_t page;

static void die(const char *what, int err)
{
	fprintf(stderr, "uffdipc: %s: %s\n", what, strerror(err));
	exit(1);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t thread_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t self_cpu_ns(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000ull +
	       (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000ull;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* The median of v[0..n) (sorts v). */
static double median(double *v, unsigned int n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* ---- the handler: the same loop in a thread and in the supervisor ---- */

enum op { OP_COPY, OP_ZERO };

struct serve_args {
	int uffd;
	enum op op;
	uintptr_t stop; /* the page whose fault ends the run */
	const char *src;
	uint64_t served, cpu_ns;
};

/* Serve missing faults until the stop page's; its thread CPU in cpu_ns. */
static void serve_loop(struct serve_args *a)
{
	uint64_t c0 = thread_cpu_ns();
	struct uffd_msg msg;

	for (;;) {
		ssize_t n = read(a->uffd, &msg, sizeof(msg));
		uintptr_t addr;
		int rc;

		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n != (ssize_t)sizeof(msg))
			die("read of the userfaultfd", n < 0 ? errno : EIO);
		if (msg.event != UFFD_EVENT_PAGEFAULT)
			continue;
		addr = (uintptr_t)msg.arg.pagefault.address & ~(uintptr_t)(page - 1);
		do {
			if (a->op == OP_COPY) {
				struct uffdio_copy cp = {
					.dst = addr, .src = (uintptr_t)a->src, .len = page};

				rc = ioctl(a->uffd, UFFDIO_COPY, &cp);
			} else {
				struct uffdio_zeropage z = {.range = {.start = addr, .len = page}};

				rc = ioctl(a->uffd, UFFDIO_ZEROPAGE, &z);
			}
		} while (rc && errno == EAGAIN);
		if (rc && errno == EEXIST) {
			struct uffdio_range r = {.start = addr, .len = page};

			ioctl(a->uffd, UFFDIO_WAKE, &r);
		} else if (rc) {
			die(a->op == OP_COPY ? "UFFDIO_COPY" : "UFFDIO_ZEROPAGE", errno);
		}
		a->served++;
		if (addr == a->stop)
			break;
	}
	a->cpu_ns = thread_cpu_ns() - c0;
}

static void *handler_thread(void *arg)
{
	serve_loop(arg);
	return NULL;
}

/* ---- the supervisor process ---- */

enum req_kind { REQ_SERVE = 1, REQ_RTT, REQ_READV, REQ_MADV, REQ_QUIT };

/* A request to the supervisor: 48 bytes, about an fl_mmap call's arguments. */
struct req {
	uint32_t kind, op;
	uint64_t addr, len, arg, arg2, pad;
};

struct reply {
	uint64_t a, b;
};

static int sup_sock = -1, rtt_seq = -1, rtt_stream = -1;
static pid_t sup_pid;

static int recv_fd(int sock, struct req *r)
{
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = {.iov_base = r, .iov_len = sizeof(*r)};
	struct msghdr mh = {.msg_iov = &iov,
			    .msg_iovlen = 1,
			    .msg_control = cbuf,
			    .msg_controllen = sizeof(cbuf)};
	struct cmsghdr *cm;
	int fd = -1;

	if (recvmsg(sock, &mh, 0) != (ssize_t)sizeof(*r))
		return -1;
	for (cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm))
		if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS)
			memcpy(&fd, CMSG_DATA(cm), sizeof(fd));
	return fd;
}

static void send_fd(int sock, const struct req *r, int fd)
{
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = {.iov_base = (void *)r, .iov_len = sizeof(*r)};
	struct msghdr mh = {.msg_iov = &iov,
			    .msg_iovlen = 1,
			    .msg_control = cbuf,
			    .msg_controllen = sizeof(cbuf)};
	struct cmsghdr *cm;

	memset(cbuf, 0, sizeof(cbuf));
	cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof(fd));
	if (sendmsg(sock, &mh, 0) != (ssize_t)sizeof(*r))
		die("sendmsg (SCM_RIGHTS)", errno);
}

static void full_write(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			die("write to the supervisor", n < 0 ? errno : EIO);
		p += n;
		len -= (size_t)n;
	}
}

static void full_read(int fd, void *buf, size_t len)
{
	char *p = buf;

	while (len) {
		ssize_t n = read(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			die("read from the supervisor", n < 0 ? errno : EIO);
		p += n;
		len -= (size_t)n;
	}
}

/* The supervisor's loop of round trips on one socket, until it closes. */
static void *sup_rtt_main(void *arg)
{
	int fd = (int)(intptr_t)arg;
	struct req r;
	struct reply rep = {0};

	for (;;) {
		ssize_t n = read(fd, &r, sizeof(r));

		if (n < (ssize_t)sizeof(r)) {
			/* a stream may split it; a seqpacket does not */
			if (n <= 0)
				return NULL;
			full_read(fd, (char *)&r + n, sizeof(r) - (size_t)n);
		}
		rep.a = r.addr + r.len;
		rep.b++;
		full_write(fd, &rep, sizeof(rep));
	}
}

static void supervisor(pid_t program)
{
	char *src = aligned_alloc(page, page), *buf = aligned_alloc(page, 64 * page);
	pthread_t t1, t2;
	struct req r;

	memset(src, PATTERN, page);
	pthread_create(&t1, NULL, sup_rtt_main, (void *)(intptr_t)rtt_seq);
	pthread_create(&t2, NULL, sup_rtt_main, (void *)(intptr_t)rtt_stream);
	for (;;) {
		struct reply rep = {0};
		int fd = recv_fd(sup_sock, &r);

		if (r.kind == REQ_QUIT || (fd < 0 && r.kind == REQ_SERVE))
			_exit(0);
		if (r.kind != REQ_SERVE && fd >= 0)
			close(fd);
		if (r.kind == REQ_SERVE) {
			struct serve_args a = {.uffd = fd, .op = r.op, .stop = r.addr, .src = src};
			uint64_t c0 = self_cpu_ns();

			serve_loop(&a);
			close(fd);
			rep.a = a.served;
			rep.b = self_cpu_ns() - c0; /* the whole process's */
		} else if (r.kind == REQ_READV) {
			/* r.addr, r.len pages in the program; r.arg pages a call */
			uint64_t t0 = now_ns();
			size_t batch = r.arg;

			for (uint64_t off = 0; off < r.len * page; off += batch * page) {
				struct iovec local = {.iov_base = buf, .iov_len = batch * page};
				struct iovec remote[64];

				for (size_t i = 0; i < batch; i++)
					remote[i] = (struct iovec){
						.iov_base = (void *)(uintptr_t)(r.addr + off +
										i * page),
						.iov_len = page};
				if (process_vm_readv(program, &local, 1, remote, batch, 0) !=
				    (ssize_t)(batch * page)) {
					rep.a = 0;
					rep.b = (uint64_t)errno;
					goto reply;
				}
			}
			rep.a = now_ns() - t0;
			rep.b = (unsigned char)buf[0];
		} else if (r.kind == REQ_MADV) {
			int pidfd = (int)syscall(SYS_pidfd_open, program, 0);
			struct iovec iov = {.iov_base = (void *)(uintptr_t)r.addr,
					    .iov_len = r.len};

			rep.a = pidfd >= 0 && syscall(SYS_process_madvise, pidfd, &iov, 1,
						      (int)r.arg, 0) == (long)r.len;
			rep.b = rep.a ? 0 : (uint64_t)errno;
			if (pidfd >= 0)
				close(pidfd);
		}
	reply:
		full_write(sup_sock, &rep, sizeof(rep));
	}
}

static void start_supervisor(void)
{
	int sv[2], s1[2], s2[2];
	pid_t program = getpid();

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) ||
	    socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, s1) ||
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s2))
		die("socketpair", errno);
	sup_pid = fork();
	if (sup_pid < 0)
		die("fork", errno);
	if (!sup_pid) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		close(sv[0]);
		close(s1[0]);
		close(s2[0]);
		sup_sock = sv[1];
		rtt_seq = s1[1];
		rtt_stream = s2[1];
		supervisor(program);
		_exit(0);
	}
	close(sv[1]);
	close(s1[1]);
	close(s2[1]);
	sup_sock = sv[0];
	rtt_seq = s1[0];
	rtt_stream = s2[0];
	/* Let it read our memory where Yama restricts ptrace to descendants. */
	prctl(PR_SET_PTRACER, sup_pid);
}

static void stop_supervisor(void)
{
	struct req r = {.kind = REQ_QUIT};

	send_fd(sup_sock, &r, 0);
	waitpid(sup_pid, NULL, 0);
}

static struct reply ask(const struct req *r, int fd)
{
	struct reply rep;

	send_fd(sup_sock, r, fd);
	full_read(sup_sock, &rep, sizeof(rep));
	return rep;
}

/* ---- the faults ---- */

struct faulter {
	pthread_t t;
	const volatile unsigned char *base;
	size_t pages;
	unsigned char want;
	pthread_barrier_t *go;
	uint64_t cpu_ns;
	bool bad;
};

static void *faulter_main(void *arg)
{
	struct faulter *f = arg;
	uint64_t c0;

	pthread_barrier_wait(f->go);
	c0 = thread_cpu_ns();
	for (size_t i = 0; i < f->pages; i++)
		if (f->base[i * page] != f->want)
			f->bad = true;
	f->cpu_ns = thread_cpu_ns() - c0;
	return NULL;
}

struct fault_result {
	double kfaults_s, prog_us, handler_us; /* CPU per fault, us */
};

static int uffd_open(void)
{
	int fd = (int)syscall(__NR_userfaultfd, O_CLOEXEC);

	if (fd < 0 && errno == EPERM)
		fd = (int)syscall(__NR_userfaultfd, O_CLOEXEC | UFFD_USER_MODE_ONLY);
	if (fd < 0) {
		int dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);

		if (dev < 0)
			die("userfaultfd", errno);
		fd = ioctl(dev, USERFAULTFD_IOC_NEW, O_CLOEXEC);
		if (fd < 0)
			die("USERFAULTFD_IOC_NEW", errno);
		close(dev);
	}
	return fd;
}

static struct fault_result run_faults(bool remote, enum op op, unsigned int threads, size_t pages)
{
	struct uffdio_api api = {.api = UFFD_API};
	size_t len = (threads * pages + 1) * page;
	struct faulter f[MAX_THREADS];
	struct fault_result res;
	struct serve_args a = {0};
	struct uffdio_register reg;
	pthread_barrier_t go;
	pthread_t handler;
	struct reply rep = {0};
	uint64_t t0, t1, prog = 0;
	char *src = NULL;
	unsigned char *p;
	int uffd = uffd_open();

	if (ioctl(uffd, UFFDIO_API, &api))
		die("UFFDIO_API", errno);
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1,
		 0);
	if (p == MAP_FAILED)
		die("mmap", errno);
	madvise(p, len, MADV_NOHUGEPAGE);
	reg = (struct uffdio_register){.range = {.start = (uintptr_t)p, .len = len},
				       .mode = UFFDIO_REGISTER_MODE_MISSING};
	if (ioctl(uffd, UFFDIO_REGISTER, &reg))
		die("UFFDIO_REGISTER", errno);
	a = (struct serve_args){
		.uffd = uffd, .op = op, .stop = (uintptr_t)p + threads * pages * page};
	if (remote) {
		struct req r = {.kind = REQ_SERVE, .op = op, .addr = a.stop};

		send_fd(sup_sock, &r, uffd);
	} else {
		src = aligned_alloc(page, page);
		memset(src, PATTERN, page);
		a.src = src;
		if (pthread_create(&handler, NULL, handler_thread, &a))
			die("pthread_create", EAGAIN);
	}
	pthread_barrier_init(&go, NULL, threads + 1);
	for (unsigned int i = 0; i < threads; i++) {
		f[i] = (struct faulter){.base = p + i * pages * page,
					.pages = pages,
					.want = op == OP_COPY ? PATTERN : 0,
					.go = &go};
		if (pthread_create(&f[i].t, NULL, faulter_main, &f[i]))
			die("pthread_create", EAGAIN);
	}
	pthread_barrier_wait(&go);
	t0 = now_ns();
	for (unsigned int i = 0; i < threads; i++) {
		pthread_join(f[i].t, NULL);
		if (f[i].bad) {
			fprintf(stderr, "uffdipc: a page read back wrong (%s, %s)\n",
				remote ? "remote" : "local", op == OP_COPY ? "copy" : "zero");
			exit(1);
		}
		prog += f[i].cpu_ns;
	}
	t1 = now_ns();
	(void)*(volatile unsigned char *)a.stop; /* the stop page ends the handler */
	if (remote) {
		full_read(sup_sock, &rep, sizeof(rep));
		a.served = rep.a;
		a.cpu_ns = rep.b;
	} else {
		pthread_join(handler, NULL);
	}
	if (a.served < threads * pages + 1) {
		fprintf(stderr, "uffdipc: served %llu of %zu faults\n",
			(unsigned long long)a.served, threads * pages + 1);
		exit(1);
	}
	pthread_barrier_destroy(&go);
	munmap(p, len);
	close(uffd);
	free(src);
	res.kfaults_s = (double)(threads * pages) / ((double)(t1 - t0) / 1e9) / 1e3;
	res.prog_us = (double)prog / 1e3 / (double)(threads * pages);
	res.handler_us = (double)a.cpu_ns / 1e3 / (double)(threads * pages);
	return res;
}

/* ---- the round trips ---- */

struct mmreq {
	uint64_t addr, len, prot, flags;
};

__attribute__((noinline)) static uint64_t fake_mm_call(struct mmreq *r)
{
	__asm__ volatile("" : : "r"(r) : "memory");
	return r->addr + r->len;
}

static uint64_t (*volatile mm_call)(struct mmreq *) = fake_mm_call;

/* ns per call */
static double time_calls(unsigned long n)
{
	struct mmreq r = {.addr = 4096, .len = 8192, .prot = 3, .flags = 0x22};
	uint64_t t0 = now_ns(), s = 0;

	for (unsigned long i = 0; i < n; i++) {
		r.addr = i;
		s += mm_call(&r);
	}
	__asm__ volatile("" : : "r"(s));
	return (double)(now_ns() - t0) / (double)n;
}

/* ns per round trip; *cpu_ns: the program's CPU per round trip */
static double time_rtt(int fd, unsigned long n, double *cpu_ns)
{
	struct req r = {.kind = REQ_RTT, .addr = 4096, .len = 8192};
	struct reply rep;
	uint64_t t0 = now_ns(), c0 = thread_cpu_ns();

	for (unsigned long i = 0; i < n; i++) {
		r.addr = i;
		full_write(fd, &r, sizeof(r));
		full_read(fd, &rep, sizeof(rep));
		if (rep.a != r.addr + r.len)
			die("round trip: wrong reply", EIO);
	}
	*cpu_ns = (double)(thread_cpu_ns() - c0) / (double)n;
	return (double)(now_ns() - t0) / (double)n;
}

/* ---- main ---- */

static void usage(FILE *out)
{
	fprintf(out, "usage: uffdipc [--threads LIST] [--pages N] [--rounds R] [--quick]\n"
		     "  --threads LIST  faulting threads, comma-separated (1,2,4)\n"
		     "  --pages N       pages each faulting thread touches (16384)\n"
		     "  --rounds R      rounds, alternating local and remote (5)\n"
		     "  --quick         a smoke run: 2 rounds, 512 pages, fewer round trips\n");
}

static void spread(const char *name, double *v, unsigned int n, double *med, double *lo, double *hi)
{
	(void)name;
	*med = median(v, n); /* sorted now */
	*lo = v[0];
	*hi = v[n - 1];
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"threads", required_argument, NULL, 't'}, {"pages", required_argument, NULL, 'p'},
		{"rounds", required_argument, NULL, 'r'},  {"quick", no_argument, NULL, 'q'},
		{"help", no_argument, NULL, 'h'},	   {NULL, 0, NULL, 0}};
	unsigned int threads[MAX_THREADS] = {1, 2, 4}, nthreads = 3, rounds = 5;
	unsigned long pages = 16384, calls = 20000000, rtts = 200000;
	int c;

	setvbuf(stdout, NULL, _IOLBF, 0);
	page = (size_t)sysconf(_SC_PAGESIZE);
	while ((c = getopt_long(argc, argv, "t:p:r:qh", longopts, NULL)) != -1) {
		char *s, *tok, *save = NULL;

		switch (c) {
		case 't':
			nthreads = 0;
			s = strdup(optarg);
			for (tok = strtok_r(s, ",", &save); tok && nthreads < MAX_THREADS;
			     tok = strtok_r(NULL, ",", &save)) {
				threads[nthreads] = (unsigned int)strtoul(tok, NULL, 10);
				if (!threads[nthreads] || threads[nthreads] > MAX_THREADS) {
					usage(stderr);
					return 2;
				}
				nthreads++;
			}
			free(s);
			break;
		case 'p':
			pages = strtoul(optarg, NULL, 10);
			break;
		case 'r':
			rounds = (unsigned int)strtoul(optarg, NULL, 10);
			break;
		case 'q':
			rounds = 2;
			pages = 512;
			calls = 1000000;
			rtts = 5000;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (!nthreads || !pages || !rounds || rounds > MAX_ROUNDS) {
		usage(stderr);
		return 2;
	}
	start_supervisor();

	printf("# faults: %lu pages per faulting thread, one handler, %u rounds (median, "
	       "min-max)\n",
	       pages, rounds);
	printf("%-5s %-7s %-3s %-22s %-22s %-22s %s\n", "op", "handler", "thr", "kfaults/s",
	       "program CPU us/fault", "handler CPU us/fault", "total CPU us/fault");
	for (int op = OP_COPY; op <= OP_ZERO; op++)
		for (unsigned int ti = 0; ti < nthreads; ti++) {
			double v[2][3][MAX_ROUNDS], tot[2][MAX_ROUNDS];

			for (unsigned int r = 0; r < rounds; r++)
				for (int k = 0; k < 2; k++) {
					bool remote = (k + r) % 2; /* alternate the order */
					struct fault_result fr =
						run_faults(remote, (enum op)op, threads[ti], pages);

					v[remote][0][r] = fr.kfaults_s;
					v[remote][1][r] = fr.prog_us;
					v[remote][2][r] = fr.handler_us;
					tot[remote][r] = fr.prog_us + fr.handler_us;
				}
			for (int remote = 0; remote < 2; remote++) {
				double m[4], lo[4], hi[4];

				for (int j = 0; j < 3; j++)
					spread("", v[remote][j], rounds, &m[j], &lo[j], &hi[j]);
				spread("", tot[remote], rounds, &m[3], &lo[3], &hi[3]);
				printf("%-5s %-7s %-3u %6.0f (%4.0f-%4.0f)     %5.2f (%.2f-%.2f)   "
				       "   "
				       "%5.2f (%.2f-%.2f)      %5.2f (%.2f-%.2f)\n",
				       op == OP_COPY ? "copy" : "zero", remote ? "remote" : "local",
				       threads[ti], m[0], lo[0], hi[0], m[1], lo[1], hi[1], m[2],
				       lo[2], hi[2], m[3], lo[3], hi[3]);
				printf("BENCH uffdipc what=faults op=%s handler=%s threads=%u "
				       "kfaults_s=%.1f kfaults_s_min=%.1f kfaults_s_max=%.1f "
				       "prog_us=%.3f handler_us=%.3f total_us=%.3f ok=1\n",
				       op == OP_COPY ? "copy" : "zero", remote ? "remote" : "local",
				       threads[ti], m[0], lo[0], hi[0], m[1], m[2], m[3]);
			}
		}

	/* The mm calls: a function call against a round trip to the supervisor. */
	{
		double fc[MAX_ROUNDS], sq[MAX_ROUNDS], st[MAX_ROUNDS], sqc[MAX_ROUNDS],
			stc[MAX_ROUNDS], m, lo, hi;

		for (unsigned int r = 0; r < rounds; r++) {
			fc[r] = time_calls(calls);
			sq[r] = time_rtt(rtt_seq, rtts, &sqc[r]);
			st[r] = time_rtt(rtt_stream, rtts, &stc[r]);
		}
		printf("# an mm call: %lu function calls, %lu round trips a round\n", calls, rtts);
		spread("", fc, rounds, &m, &lo, &hi);
		printf("function call (through a pointer)    %8.1f ns (%.1f-%.1f)\n", m, lo, hi);
		printf("BENCH uffdipc what=call ns=%.2f ok=1\n", m);
		spread("", sq, rounds, &m, &lo, &hi);
		printf("unix SOCK_SEQPACKET round trip      %8.0f ns (%.0f-%.0f)", m, lo, hi);
		printf(", program CPU %.0f ns\n", median(sqc, rounds));
		printf("BENCH uffdipc what=rtt sock=seqpacket ns=%.0f ok=1\n", m);
		spread("", st, rounds, &m, &lo, &hi);
		printf("unix SOCK_STREAM round trip         %8.0f ns (%.0f-%.0f)", m, lo, hi);
		printf(", program CPU %.0f ns\n", median(stc, rounds));
		printf("BENCH uffdipc what=rtt sock=stream ns=%.0f ok=1\n", m);
	}

	/* Page-out's read: the supervisor reads the program's pages. */
	{
		size_t n = pages < 4096 ? 4096 : pages;
		unsigned char *buf = mmap(NULL, n * page, PROT_READ | PROT_WRITE,
					  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		unsigned char *dst = aligned_alloc(page, page);
		double mc[MAX_ROUNDS], r1[MAX_ROUNDS], r64[MAX_ROUNDS], m, lo, hi;
		struct reply rep;
		bool ok = true;

		if (buf == MAP_FAILED)
			die("mmap", errno);
		memset(buf, 0x33, n * page);
		for (unsigned int r = 0; r < rounds; r++) {
			uint64_t t0 = now_ns();

			for (size_t i = 0; i < n; i++) {
				memcpy(dst, buf + i * page, page);
				__asm__ volatile("" : : "r"(dst) : "memory");
			}
			mc[r] = (double)(now_ns() - t0) / (double)n;
			for (int b = 0; b < 2; b++) {
				struct req q = {.kind = REQ_READV,
						.addr = (uintptr_t)buf,
						.len = n,
						.arg = b ? 64 : 1};

				rep = ask(&q, 0);
				if (!rep.a) {
					printf("process_vm_readv from the supervisor: %s\n",
					       strerror((int)rep.b));
					ok = false;
					break;
				}
				(b ? r64 : r1)[r] = (double)rep.a / (double)n;
			}
			if (!ok)
				break;
		}
		printf("# page-out's read of a page (%zu pages a round)\n", n);
		spread("", mc, rounds, &m, &lo, &hi);
		printf("memcpy in the program                %8.0f ns (%.0f-%.0f)\n", m, lo, hi);
		printf("BENCH uffdipc what=pageout how=memcpy ns=%.0f ok=1\n", m);
		if (ok) {
			spread("", r1, rounds, &m, &lo, &hi);
			printf("process_vm_readv, 1 page a call      %8.0f ns (%.0f-%.0f)\n", m, lo,
			       hi);
			printf("BENCH uffdipc what=pageout how=readv1 ns=%.0f ok=1\n", m);
			spread("", r64, rounds, &m, &lo, &hi);
			printf("process_vm_readv, 64 pages a call    %8.0f ns (%.0f-%.0f)\n", m, lo,
			       hi);
			printf("BENCH uffdipc what=pageout how=readv64 ns=%.0f ok=1\n", m);
		}
		{
			struct req q = {.kind = REQ_MADV,
					.addr = (uintptr_t)buf,
					.len = 16 * page,
					.arg = MADV_DONTNEED};

			rep = ask(&q, 0);
			printf("process_madvise(MADV_DONTNEED) from the supervisor: %s\n",
			       rep.a ? "works" : strerror((int)rep.b));
			printf("BENCH uffdipc what=remote_dontneed works=%d ok=1\n", (int)rep.a);
		}
		munmap(buf, n * page);
		free(dst);
	}
	stop_supervisor();
	return 0;
}
