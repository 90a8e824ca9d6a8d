package io.tether.run;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.function.BiFunction;

import io.tether.data.TokenRecords;
import io.tether.data.Truncation;
import io.tether.model.CausalLM;
import io.tether.model.Models;
import io.tether.train.DataSplit;
import io.tether.train.KtoTraining;
import io.tether.train.PreferenceTraining;
import io.tether.train.Trainer;

/**
 * {@code tether dpo|kto|orpo|simpo|cpo}: offline preference optimisation on the {@link RunSession}, the method's keys in
 * its {@link PreferenceMethod} record. The data is read and checked before any model is loaded; reference log-probs come
 * from {@link ReferenceLogProbs}; {@link PreferenceDiagnostics} watches the run (ln 2, length bias, verbosity).
 */
public final class PreferenceRun {
    private PreferenceRun() {}

    public static Trainer.Result run(RunSpec spec, PreferenceMethod method, boolean resume, Trainer.Listener listener) throws IOException {
        return run(new RunConfig<>(spec, method), resume, listener);
    }

    public static Trainer.Result run(RunConfig<? extends PreferenceMethod> c, boolean resume, Trainer.Listener listener) throws IOException {
        PreferenceMethod method = c.method();
        method.check(c.spec());
        try (RunSession s = RunSession.open(c, resume, listener)) {
            PreferenceDiagnostics diagnostics = new PreferenceDiagnostics(s.listener(), method);
            // PreferenceMethod is sealed: its methods train on pairs, or (KTO) on unpaired examples.
            return method instanceof PreferenceMethod.Kto kto ? unpaired(s, kto, diagnostics) : pairs(s, (PreferenceMethod.Pairwise) method, diagnostics);
        }
    }

    private static Trainer.Result pairs(RunSession s, PreferenceMethod.Pairwise method, PreferenceDiagnostics diagnostics) throws IOException {
        List<List<PreferenceTraining.Pair>> split = examples(s, TokenRecords.Use.PAIRS, PreferenceRun::pairs);
        Models.LoadedModel policy = s.loadPolicy();
        PreferenceDiagnostics.warnLengthBias(split.get(0), method, diagnostics);
        diagnostics.dataCounts(PreferenceDiagnostics.dataCounts(split.get(0)));
        ReferenceLogProbs.Pairs ref = ReferenceLogProbs.forPairs(s, method.reference(), split.get(0), split.get(1));
        s.writeRecords(true);
        List<PreferenceTraining.Pair> train = ref.train(), eval = ref.eval();
        if (!eval.isEmpty() && method.reference() != null && method.reference().refLogprobs() != null) {
            diagnostics.onNotice("held-out evaluation is skipped: ref_logprobs covers the training data only (use precompute_ref_log_probs to cover both)");
            eval = List.of();
        }
        diagnostics.trackSampledLength(policy.model(), s.directory(), eval, policy.defaultStopIds());
        if (!s.resume()) diagnostics.announceStart();
        Trainer.Result result = s.trainer(policy.model(), method.training(ref.model()), train, eval, diagnostics).train(s.resume());
        s.saveResult(policy.model(), policy.storedDtypes());
        return result;
    }

    private static Trainer.Result unpaired(RunSession s, PreferenceMethod.Kto kto, PreferenceDiagnostics diagnostics) throws IOException {
        List<List<KtoTraining.Example>> split = examples(s, TokenRecords.Use.UNPAIRED, PreferenceRun::unpaired);
        List<KtoTraining.Example> train = split.get(0), eval = split.get(1);
        Models.LoadedModel policy = s.loadPolicy();
        CausalLM reference = ReferenceLogProbs.forUnpaired(s, kto.refModel());
        s.writeRecords(true);
        PreferenceDiagnostics.warnKtoWeights(train, kto, diagnostics);
        Trainer.Result result = s.trainer(policy.model(), kto.training(reference, s.truncation(true).maxLength()), train, eval, diagnostics).train(s.resume());
        s.saveResult(policy.model(), policy.storedDtypes());
        return result;
    }

    /**
     * The training and held-out examples: the data first, read and checked as `tether data validate` reads it and
     * tokenized, so that a bad record stops the run before any model is loaded; then cut to the length limits (what
     * reading skipped and cutting dropped goes into the run's records, written here) and split.
     */
    private static <E> List<List<E>> examples(RunSession s, TokenRecords.Use use, BiFunction<List<TokenRecords.TokenRecord>, Truncation, List<E>> build)
            throws IOException {
        RunSpec spec = s.spec();
        Truncation truncation = s.truncation(true);
        var records = s.read(spec.data(), use);
        var evalRecords = spec.evalData() == null ? null : s.read(spec.evalData(), use);
        List<E> examples = build.apply(records.records(), truncation);
        List<E> evalExamples = evalRecords == null ? null : build.apply(evalRecords.records(), truncation);
        s.writeRecords(true);
        return DataSplit.trainAndHeldOut(examples, evalExamples, spec.evalFraction(), spec.trainer().seed());
    }

    /** Pairs within the length limits (TRL's DPO truncation; see {@link Truncation#pair}); dropped ones are counted there. */
    static List<PreferenceTraining.Pair> pairs(List<TokenRecords.TokenRecord> records, Truncation truncation) {
        List<PreferenceTraining.Pair> out = new ArrayList<>();
        for (TokenRecords.TokenRecord r : records) {
            long[][] cut = truncation.pair(r.prompt(), r.chosen(), r.rejected());
            if (cut != null) out.add(new PreferenceTraining.Pair(cut[0], cut[1], cut[2], Double.NaN, Double.NaN));
        }
        return out;
    }

    /** Unpaired examples: records with a boolean label, or preference pairs split into a desirable and an undesirable one (TRL's KTO truncation). */
    static List<KtoTraining.Example> unpaired(List<TokenRecords.TokenRecord> records, Truncation truncation) {
        List<KtoTraining.Example> out = new ArrayList<>();
        for (TokenRecords.TokenRecord r : records) {
            if (r.isPreference()) {
                example(out, truncation.unpaired(r.prompt(), r.chosen()), true);
                example(out, truncation.unpaired(r.prompt(), r.rejected()), false);
            } else {
                example(out, truncation.unpaired(r.prompt(), r.completion()), r.desirable());
            }
        }
        return out;
    }

    private static void example(List<KtoTraining.Example> out, long[][] cut, boolean desirable) {
        if (cut != null) out.add(new KtoTraining.Example(cut[0], cut[1], desirable));
    }
}
