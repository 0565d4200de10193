package gptfast4j.jmh;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OperationsPerInvocation;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

import java.util.concurrent.TimeUnit;

/**
 * What one core does per nanosecond with the vector operations the kernels are made of, at the machine's preferred
 * width: eight independent chains each, so that throughput, not latency, bounds them; the score is ns per
 * operation (one vector instruction). {@link #scalarAddChain} is one dependent add per cycle: its ns per add is the
 * clock period, which turns the others into operations per cycle. It says which unit bounds a kernel: an int16
 * product (Q4_0's decode kernel; the int16 prefill product of sessions 22-46) does one multiply and one add per 32
 * multiply-adds, so where a multiply takes a cycle and an add beside it nothing, it can do no more than 32
 * multiply-adds per cycle, as float FMAs at two a cycle.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = "--add-modules=jdk.incubator.vector")
public class VectorOpsBenchmark {
    private static final VectorSpecies<Short> S = ShortVector.SPECIES_PREFERRED;
    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    private static final int STEPS = 1024;

    private final short[] shorts = new short[2 * S.length()];
    private final float[] floats = new float[2 * F.length()];
    private long step = 3;

    public VectorOpsBenchmark() {
        for (int i = 0; i < shorts.length; i++) shorts[i] = (short) (7 * i + 3);
        for (int i = 0; i < floats.length; i++) floats[i] = 1 + i * 1e-7f;
    }

    @Benchmark
    @OperationsPerInvocation(4 * STEPS)
    public long scalarAddChain() {
        long a = step, d = step;
        for (int i = 0; i < STEPS; i++) {
            a += d;
            a ^= i;
            a += d;
            a ^= i;
        }
        return a;
    }

    @Benchmark
    @OperationsPerInvocation(8 * STEPS)
    public int int16Multiply() {
        ShortVector x = ShortVector.fromArray(S, shorts, 0), y = ShortVector.fromArray(S, shorts, S.length());
        ShortVector a0 = x, a1 = y, a2 = x.add(y), a3 = x.sub(y), a4 = y.sub(x), a5 = x.add(x), a6 = y.add(y), a7 = x.neg();
        for (int i = 0; i < STEPS; i++) {
            a0 = a0.mul(x); a1 = a1.mul(x); a2 = a2.mul(x); a3 = a3.mul(x);
            a4 = a4.mul(x); a5 = a5.mul(x); a6 = a6.mul(x); a7 = a7.mul(x);
        }
        return a0.add(a1).add(a2).add(a3).add(a4).add(a5).add(a6).add(a7).reduceLanes(VectorOperators.ADD);
    }

    @Benchmark
    @OperationsPerInvocation(8 * STEPS)
    public int int16Add() {
        ShortVector x = ShortVector.fromArray(S, shorts, 0), y = ShortVector.fromArray(S, shorts, S.length());
        ShortVector a0 = x, a1 = y, a2 = x.add(y), a3 = x.sub(y), a4 = y.sub(x), a5 = x.add(x), a6 = y.add(y), a7 = x.neg();
        for (int i = 0; i < STEPS; i++) {
            a0 = a0.add(x); a1 = a1.add(x); a2 = a2.add(x); a3 = a3.add(x);
            a4 = a4.add(x); a5 = a5.add(x); a6 = a6.add(x); a7 = a7.add(x);
        }
        return a0.add(a1).add(a2).add(a3).add(a4).add(a5).add(a6).add(a7).reduceLanes(VectorOperators.ADD);
    }

    /** A multiply and an add per chain step, as the kernels' {@code x.mul(w).add(sum)}: 16 operations per step. */
    @Benchmark
    @OperationsPerInvocation(16 * STEPS)
    public int int16MultiplyAdd() {
        ShortVector x = ShortVector.fromArray(S, shorts, 0), y = ShortVector.fromArray(S, shorts, S.length());
        ShortVector a0 = x, a1 = y, a2 = x.add(y), a3 = x.sub(y), a4 = y.sub(x), a5 = x.add(x), a6 = y.add(y), a7 = x.neg();
        for (int i = 0; i < STEPS; i++) {
            a0 = a0.mul(x).add(y); a1 = a1.mul(x).add(y); a2 = a2.mul(x).add(y); a3 = a3.mul(x).add(y);
            a4 = a4.mul(x).add(y); a5 = a5.mul(x).add(y); a6 = a6.mul(x).add(y); a7 = a7.mul(x).add(y);
        }
        return a0.add(a1).add(a2).add(a3).add(a4).add(a5).add(a6).add(a7).reduceLanes(VectorOperators.ADD);
    }

    @Benchmark
    @OperationsPerInvocation(8 * STEPS)
    public float floatFma() {
        FloatVector x = FloatVector.fromArray(F, floats, 0), y = FloatVector.fromArray(F, floats, F.length());
        FloatVector a0 = x, a1 = y, a2 = x.add(y), a3 = x.sub(y), a4 = y.sub(x), a5 = x.add(x), a6 = y.add(y), a7 = x.neg();
        for (int i = 0; i < STEPS; i++) {
            a0 = a0.fma(x, y); a1 = a1.fma(x, y); a2 = a2.fma(x, y); a3 = a3.fma(x, y);
            a4 = a4.fma(x, y); a5 = a5.fma(x, y); a6 = a6.fma(x, y); a7 = a7.fma(x, y);
        }
        return a0.add(a1).add(a2).add(a3).add(a4).add(a5).add(a6).add(a7).reduceLanes(VectorOperators.ADD);
    }

    /** Eight int16 multiplies and eight float FMAs per step: whether they run on separate units (16 operations per step). */
    @Benchmark
    @OperationsPerInvocation(16 * STEPS)
    public float int16MultiplyBesideFma() {
        ShortVector x = ShortVector.fromArray(S, shorts, 0), y = ShortVector.fromArray(S, shorts, S.length());
        ShortVector a0 = x, a1 = y, a2 = x.add(y), a3 = x.sub(y), a4 = y.sub(x), a5 = x.add(x), a6 = y.add(y), a7 = x.neg();
        FloatVector u = FloatVector.fromArray(F, floats, 0), v = FloatVector.fromArray(F, floats, F.length());
        FloatVector b0 = u, b1 = v, b2 = u.add(v), b3 = u.sub(v), b4 = v.sub(u), b5 = u.add(u), b6 = v.add(v), b7 = u.neg();
        for (int i = 0; i < STEPS; i++) {
            a0 = a0.mul(x); a1 = a1.mul(x); a2 = a2.mul(x); a3 = a3.mul(x);
            a4 = a4.mul(x); a5 = a5.mul(x); a6 = a6.mul(x); a7 = a7.mul(x);
            b0 = b0.fma(u, v); b1 = b1.fma(u, v); b2 = b2.fma(u, v); b3 = b3.fma(u, v);
            b4 = b4.fma(u, v); b5 = b5.fma(u, v); b6 = b6.fma(u, v); b7 = b7.fma(u, v);
        }
        return a0.add(a1).add(a2).add(a3).add(a4).add(a5).add(a6).add(a7).reduceLanes(VectorOperators.ADD)
                + b0.add(b1).add(b2).add(b3).add(b4).add(b5).add(b6).add(b7).reduceLanes(VectorOperators.ADD);
    }
}
