package io.tether.train;

import java.util.ArrayList;
import java.util.Collection;
import java.util.List;

import org.bytedeco.pytorch.NoGradGuard;
import org.bytedeco.pytorch.Tensor;

import io.tether.engine.DType;
import io.tether.engine.ProcessGroup;
import io.tether.engine.StepScope;
import io.tether.engine.Tensors;

/**
 * {@link GradientSync} over a c10d {@link ProcessGroup}: gradients are copied into flat buckets of one dtype (at most
 * {@link #DEFAULT_BUCKET_BYTES}, PyTorch DDP's {@code bucket_cap_mb=25}), each bucket summed over ranks in one
 * all-reduce and copied back. Few large messages instead of one per tensor: Gloo's per-call latency dominates small
 * tensors. The reduction runs after backward (no overlap with it: the bindings expose no autograd hooks we can use).
 */
public final class DataParallel implements GradientSync {
    public static final long DEFAULT_BUCKET_BYTES = 25L << 20;

    private final ProcessGroup group;
    private final long bucketBytes;

    public DataParallel(ProcessGroup group) {
        this(group, DEFAULT_BUCKET_BYTES);
    }

    public DataParallel(ProcessGroup group, long bucketBytes) {
        if (bucketBytes < 1) throw new IllegalArgumentException("bucket bytes must be >= 1");
        this.group = group;
        this.bucketBytes = bucketBytes;
    }

    @Override public int rank() { return group.rank(); }

    @Override public int worldSize() { return group.worldSize(); }

    @Override
    public void allReduceGradients(Collection<Tensor> parameters) {
        List<Tensor> params = new ArrayList<>(parameters);
        try (StepScope scope = new StepScope(); NoGradGuard g = new NoGradGuard()) {
            // Which parameters have a gradient anywhere: every rank must pass the same tensors to each all-reduce.
            double[] defined = new double[params.size()];
            for (int i = 0; i < params.size(); i++) defined[i] = params.get(i).grad().defined() ? 1 : 0;
            double[] anywhere = group.sum(defined);
            List<Tensor> grads = new ArrayList<>();
            for (int i = 0; i < params.size(); i++) {
                if (anywhere[i] == 0) continue;
                Tensor p = params.get(i);
                if (!p.grad().defined()) p.mutable_grad().put(p.detach().mul(Tensors.scalar(0.0)));
                grads.add(p.grad());
            }
            reduceInBuckets(grads);
        }
    }

    private void reduceInBuckets(List<Tensor> grads) {
        int i = 0;
        while (i < grads.size()) {
            DType dtype = Tensors.dtype(grads.get(i));
            long elemBytes = grads.get(i).element_size();
            long elems = 0;
            int j = i;
            // A bucket: consecutive gradients of one dtype up to the byte cap (a single larger tensor is its own bucket).
            while (j < grads.size() && Tensors.dtype(grads.get(j)) == dtype
                    && (j == i || (elems + grads.get(j).numel()) * elemBytes <= bucketBytes)) {
                elems += grads.get(j).numel();
                j++;
            }
            Tensor flat = Tensors.empty(dtype, elems);
            long at = 0;
            for (int k = i; k < j; k++) {
                long n = grads.get(k).numel();
                flat.narrow(0, at, n).copy_(grads.get(k).reshape(-1));
                at += n;
            }
            group.allReduceSum(flat);
            at = 0;
            for (int k = i; k < j; k++) {
                Tensor gk = grads.get(k);
                long n = gk.numel();
                gk.copy_(flat.narrow(0, at, n).view(Tensors.shape(gk)));
                at += n;
            }
            i = j;
        }
    }

    @Override public double[] sum(double[] values) { return group.sum(values); }

    @Override public double[][] allGather(double[] values) { return group.allGather(values); }

    @Override
    public void broadcastFromRankZero(Collection<Tensor> tensors) {
        try (NoGradGuard g = new NoGradGuard()) {
            for (Tensor t : tensors) group.broadcast(t, 0);
        }
    }

    @Override public void barrier() { group.barrier(); }
}
