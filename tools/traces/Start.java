import java.util.*;
import java.util.concurrent.*;

// A start that does what a runtime's start does: loads classes, compiles,
// and has threads allocate and touch memory while the heap grows.
public class Start {
    public static void main(String[] args) throws Exception {
        int threads = 8;
        ExecutorService ex = Executors.newFixedThreadPool(threads);
        List<Future<Long>> fs = new ArrayList<>();
        for (int t = 0; t < threads; t++) {
            final int seed = t;
            fs.add(ex.submit(() -> {
                Random r = new Random(seed);
                List<long[]> keep = new ArrayList<>();
                long sum = 0;
                for (int i = 0; i < 400; i++) {
                    long[] a = new long[1 + r.nextInt(64 * 1024)];
                    for (int k = 0; k < a.length; k += 512) a[k] = k ^ i;
                    if (r.nextInt(4) == 0) keep.add(a);
                    sum += a[a.length / 2];
                    Map<String, Integer> m = new HashMap<>();
                    for (int k = 0; k < 200; k++) m.put("k" + k + "-" + i, k);
                    sum += m.size();
                }
                return sum + keep.size();
            }));
        }
        long total = 0;
        for (Future<Long> f : fs) total += f.get();
        ex.shutdown();
        System.out.println("done " + total);
    }
}
