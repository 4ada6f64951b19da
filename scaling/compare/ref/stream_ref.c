/* Reference: a plain C/OpenMP STREAM-like triad (a = b + s*c), the bar the suite's back ends
 * are measured against. Prints the best time and its bandwidth (3 arrays moved). */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char** argv) {
  const long n = argc > 1 ? atol(argv[1]) : (1L << 25);
  const int ntimes = argc > 2 ? atoi(argv[2]) : 20;
  if (n <= 0 || ntimes < 2) {
    fprintf(stderr, "usage: stream_ref N NTIMES\n");
    return 2;
  }
  double* a = malloc(sizeof(double) * n);
  double* b = malloc(sizeof(double) * n);
  double* c = malloc(sizeof(double) * n);
  if (!a || !b || !c) return 2;
  const double s = 0.4;
#pragma omp parallel for schedule(static)
  for (long i = 0; i < n; ++i) {
    a[i] = 0.1;
    b[i] = 0.2;
    c[i] = 0.0;
  }
  double best = 1e30;
  for (int k = 0; k < ntimes; ++k) {
    double t0 = omp_get_wtime();
#pragma omp parallel for simd schedule(static)
    for (long i = 0; i < n; ++i) a[i] = b[i] + s * c[i];
    double t = omp_get_wtime() - t0;
    if (k > 0 && t < best) best = t;
  }
  /* Keep the result live and check it (a = 0.2 + 0.4*0 every time). */
  for (long i = 0; i < n; i += n / 7 + 1)
    if (a[i] != 0.2) {
      fprintf(stderr, "stream_ref: wrong result\n");
      return 1;
    }
  printf("%.9f %.3f\n", best, 3.0 * sizeof(double) * n / best / 1e9);
  free(a);
  free(b);
  free(c);
  return 0;
}
