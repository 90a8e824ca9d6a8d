package io.tether.run;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;
import java.util.function.Supplier;

import com.fasterxml.jackson.annotation.JsonUnwrapped;
import com.fasterxml.jackson.databind.JsonNode;

import io.tether.data.Truncation;
import io.tether.engine.ConfigException;
import io.tether.model.CausalLM;
import io.tether.objective.DpoLoss;
import io.tether.objective.KtoLoss;
import io.tether.train.KtoTraining;
import io.tether.train.LearningRateDefault;
import io.tether.train.PreferenceTraining;
import io.tether.train.TrainingMethod;

/**
 * The offline preference methods ({@code tether dpo|kto|orpo|simpo|cpo}), one settings record each holding only its own
 * keys, named and defaulted as TRL's DPOConfig, KTOConfig, ORPOConfig and CPOConfig (v0.29.1); the keys every run
 * shares are the {@link RunSpec}. YAML and {@code --set} bind through {@link #config}, which finds the command's record
 * in {@link #METHODS}; Java callers build the records directly. A new method is one record here, its
 * {@link TrainingMethod}, and one line in {@link #METHODS}.
 */
public sealed interface PreferenceMethod {
    /** TRL's {@code beta} default in DPOConfig, KTOConfig, ORPOConfig and CPOConfig (v0.29.1). */
    double BETA = 0.1;

    /** The loss's β (ORPO's λ). */
    double beta();

    /** Checks that need the common keys as well (LoRA, the batch); each names its key. */
    default void check(RunSpec spec) {}

    /** A method trained on preference pairs (chosen and rejected completions of one prompt). */
    sealed interface Pairwise extends PreferenceMethod {
        /**
         * The method of the one loop; {@code reference} is the frozen reference model when one is loaded (null when
         * its log-probs are precomputed, when it is the policy with its adapters off, or for a reference-free method).
         */
        TrainingMethod<PreferenceTraining.Pair> training(CausalLM reference);

        /** Where reference log-probs come from, or null for a reference-free method. */
        default Reference reference() {
            return null;
        }
    }

    /**
     * Where a DPO run's reference log-probs come from (see {@link ReferenceLogProbs}).
     *
     * @param refModel              a reference checkpoint (default: the initial policy; with LoRA, the policy with its adapters off)
     * @param refLogprobs           a {@code tether logprobs --out} file for the training data (checked against the data and weights hashes)
     * @param precomputeRefLogProbs TRL {@code precompute_ref_log_probs}: one pass before training, cached in the run directory
     */
    record Reference(Path refModel, Path refLogprobs, boolean precomputeRefLogProbs) {
        /** Log-probs computed as the run goes from a reference model, not read from a file. */
        public boolean live() {
            return refLogprobs == null && !precomputeRefLogProbs;
        }
    }

    /**
     * {@code tether dpo}: DPO and its loss family against a reference (TRL DPOConfig, v0.29.1).
     *
     * @param loss               {@code beta}, {@code loss_type}, {@code loss_weights}, {@code label_smoothing},
     *                           {@code f_divergence_type}, {@code f_alpha_divergence_coef}, {@code discopop_tau},
     *                           {@code semantics}, {@code rdpo_alpha} (see {@link DpoLoss.Config})
     * @param reference          {@code ref_model}, {@code ref_logprobs}, {@code precompute_ref_log_probs}
     * @param syncRefModel       TRL {@code sync_ref_model} (TR-DPO): the reference moves toward the policy
     * @param refModelMixupAlpha TRL {@code ref_model_mixup_alpha} (0.6)
     * @param refModelSyncSteps  TRL {@code ref_model_sync_steps} (512)
     * @param ldAlpha            TRL {@code ld_alpha} (LD-DPO), or null for plain sums
     * @param useWeighting       TRL {@code use_weighting} (WPO)
     */
    record Dpo(@JsonUnwrapped DpoLoss.Config loss, @JsonUnwrapped Reference reference, boolean syncRefModel, double refModelMixupAlpha,
               int refModelSyncSteps, Double ldAlpha, boolean useWeighting) implements Pairwise {
        public static final RunSpec.Defaults DEFAULTS = common(LearningRateDefault.DPO);

        public Dpo {
            if (reference == null) reference = new Reference(null, null, false);
            if (syncRefModel && !reference.live())
                throw new ConfigException("key 'sync_ref_model': TR-DPO moves the reference, so it cannot use precomputed reference log-probs");
            if (ldAlpha != null && !reference.live())
                throw new ConfigException("key 'ld_alpha': LD-DPO weights the reference's tokens too, so it needs a live reference, not precomputed sums");
            if (ldAlpha != null && !(ldAlpha >= 0 && ldAlpha <= 1)) throw new ConfigException("key 'ld_alpha': must be in [0, 1]");
        }

        /** TRL's defaults: the sigmoid loss at β 0.1, the initial policy as reference, no TR-DPO, LD-DPO or WPO. */
        public static Dpo defaults() {
            return of(DpoLoss.Config.of(BETA, "sigmoid"));
        }

        /** TRL's defaults with this loss. */
        public static Dpo of(DpoLoss.Config loss) {
            return new Dpo(loss, null, false, 0.6, 512, null, false);
        }

        public Dpo withReference(Reference reference) {
            return new Dpo(loss, reference, syncRefModel, refModelMixupAlpha, refModelSyncSteps, ldAlpha, useWeighting);
        }

        @Override
        public double beta() {
            return loss.beta();
        }

        /** DPO with the sigmoid loss alone: the loss whose start at ln 2 the diagnostics know. */
        public boolean sigmoidOnly() {
            return loss.lossType().equals(List.of("sigmoid"));
        }

        public static Dpo read(ConfigTree c) {
            Dpo d = defaults();
            DpoLoss.Config l = d.loss();
            Path ref = c.path("ref_model"), refLogprobs = c.path("ref_logprobs");
            boolean precompute = c.bool("precompute_ref_log_probs", d.reference().precomputeRefLogProbs());
            double beta = c.number("beta", l.beta());
            List<String> types = lossTypes(c, l.lossType().get(0));
            List<Double> weights = null;
            JsonNode lw = c.raw("loss_weights");
            if (lw != null && lw.isArray()) {
                weights = new ArrayList<>();
                for (JsonNode w : lw) weights.add(w.asDouble());
            } else if (lw != null) {
                throw new ConfigException("key 'loss_weights': expected a list of numbers, got " + lw);
            }
            double smoothing = c.number("label_smoothing", l.labelSmoothing());
            String fdiv = c.string("f_divergence_type", l.fDivergenceType());
            double falpha = c.number("f_alpha_divergence_coef", l.fAlphaDivergenceCoef()), tau = c.number("discopop_tau", l.discopopTau());
            DpoLoss.Semantics semantics = switch (c.string("semantics", "trl")) {
                case "trl" -> DpoLoss.Semantics.TRL;
                case "trl_legacy" -> DpoLoss.Semantics.TRL_LEGACY;
                case "openrlhf" -> DpoLoss.Semantics.OPENRLHF;
                default -> throw new ConfigException("key 'semantics': expected trl, trl_legacy or openrlhf");
            };
            double rdpoAlpha = c.number("rdpo_alpha", l.rdpoAlpha());
            boolean sync = c.bool("sync_ref_model", d.syncRefModel());
            double mixup = c.number("ref_model_mixup_alpha", d.refModelMixupAlpha());
            int syncSteps = c.integer("ref_model_sync_steps", d.refModelSyncSteps());
            Double ldAlpha = c.raw("ld_alpha") != null ? c.number("ld_alpha", 1.0) : null;
            boolean useWeighting = c.bool("use_weighting", d.useWeighting());
            List<Double> w = weights;
            DpoLoss.Config loss = c.validated(() -> new DpoLoss.Config(beta, types, w, smoothing, fdiv, falpha, tau, semantics, rdpoAlpha));
            return c.validated(() -> new Dpo(loss, new Reference(ref, refLogprobs, precompute), sync, mixup, syncSteps, ldAlpha, useWeighting));
        }

        @Override
        public void check(RunSpec spec) {
            if (spec.lora() != null && syncRefModel)
                throw new ConfigException("key 'sync_ref_model': TR-DPO needs a separate reference model, and with use_peft the reference is the policy without adapters");
        }

        @Override
        public TrainingMethod<PreferenceTraining.Pair> training(CausalLM reference) {
            return new PreferenceTraining(new PreferenceTraining.Settings(PreferenceTraining.Kind.DPO, loss, 0, 0, reference,
                    syncRefModel ? refModelMixupAlpha : 0, syncRefModel ? refModelSyncSteps : 0, ldAlpha, useWeighting, PreferenceTraining.ReferenceFree.TRL));
        }
    }

    /**
     * {@code tether kto}: KTO on unpaired thumbs-up/down records (TRL KTOConfig, v0.29.1).
     *
     * @param loss     {@code beta}, {@code desirable_weight} (1.0), {@code undesirable_weight} (1.0), {@code loss_type}
     *                 (kto or apo_zero_unpaired)
     * @param refModel {@code ref_model}: the reference checkpoint (default: the initial policy; with LoRA, the policy with its adapters off)
     */
    record Kto(@JsonUnwrapped KtoLoss.Config loss, Path refModel) implements PreferenceMethod {
        public static final RunSpec.Defaults DEFAULTS = common(LearningRateDefault.KTO);

        public static Kto defaults() {
            return new Kto(new KtoLoss.Config(BETA, 1.0, 1.0, "kto"), null);
        }

        @Override
        public double beta() {
            return loss.beta();
        }

        public static Kto read(ConfigTree c) {
            KtoLoss.Config l = defaults().loss();
            Path ref = c.path("ref_model");
            double beta = c.number("beta", l.beta());
            List<String> types = lossTypes(c, l.lossType());
            if (types.size() != 1 || !(types.get(0).equals("kto") || types.get(0).equals("apo_zero_unpaired")))
                throw new ConfigException("key 'loss_type': KTO takes kto or apo_zero_unpaired, got " + types);
            double dw = c.number("desirable_weight", l.desirableWeight()), uw = c.number("undesirable_weight", l.undesirableWeight());
            return c.validated(() -> new Kto(new KtoLoss.Config(beta, dw, uw, types.get(0)), ref));
        }

        @Override
        public void check(RunSpec spec) {
            if (loss.lossType().equals("kto") && spec.trainer().perDeviceTrainBatchSize() < 2)
                // TRL's KTOTrainer refuses this too ("Actual (not effective) batch size must be > 1"): gradient accumulation does not help.
                throw new ConfigException("key 'per_device_train_batch_size': KTO estimates its KL term from each batch's prompts paired with "
                        + "other examples' completions, so a batch needs at least 2 examples (got 1; gradient_accumulation_steps does not count). "
                        + "loss_type apo_zero_unpaired needs no KL term");
        }

        /** The method of the one loop; {@code reference} null means the policy with its adapters off. */
        public KtoTraining training(CausalLM reference, int maxLength) {
            return new KtoTraining(loss, reference, maxLength);
        }
    }

    /**
     * {@code tether orpo}: odds-ratio preference optimisation, no reference (TRL ORPOConfig, v0.29.1).
     *
     * @param beta          TRL {@code beta}: ORPO's λ, the weight of the odds-ratio term
     * @param orpoNllTokens {@code orpo_nll_tokens}: the NLL term over the chosen rows' prompt_and_completion tokens
     *                      (TRL's ORPOTrainer) or the completion alone
     */
    record Orpo(double beta, String orpoNllTokens) implements Pairwise {
        public static final RunSpec.Defaults DEFAULTS = common(LearningRateDefault.ORPO);

        public Orpo {
            if (!(beta > 0)) throw new ConfigException("key 'beta': must be > 0, got " + beta);
            if (!orpoNllTokens.equals("prompt_and_completion") && !orpoNllTokens.equals("completion"))
                throw new ConfigException("key 'orpo_nll_tokens': expected prompt_and_completion (TRL's ORPO) or completion, got '" + orpoNllTokens + "'");
        }

        public static Orpo defaults() {
            return new Orpo(BETA, "prompt_and_completion");
        }

        public static Orpo read(ConfigTree c) {
            Orpo d = defaults();
            double beta = c.number("beta", d.beta());
            String nll = c.string("orpo_nll_tokens", d.orpoNllTokens());
            return c.validated(() -> new Orpo(beta, nll));
        }

        /** The NLL term over prompt and completion, as TRL's ORPOTrainer computes it. */
        public boolean nllWithPrompt() {
            return orpoNllTokens.equals("prompt_and_completion");
        }

        @Override
        public TrainingMethod<PreferenceTraining.Pair> training(CausalLM reference) {
            return new PreferenceTraining(new PreferenceTraining.Settings(PreferenceTraining.Kind.ORPO, DpoLoss.Config.of(beta, "sigmoid"), 0, 0, null, 0, 0,
                    null, false, new PreferenceTraining.ReferenceFree(0, nllWithPrompt())));
        }
    }

    /**
     * {@code tether cpo}: contrastive preference optimisation with an NLL term, no reference (TRL CPOConfig, v0.29.1;
     * TRL's CPOTrainer also trains SimPO and AlphaPO, see {@link Simpo}).
     *
     * @param beta           TRL {@code beta}
     * @param lossType       TRL {@code loss_type}: sigmoid (CPO) or simpo (length-normalised, with {@code simpo_gamma});
     *                       TRL's alphapo is simpo with cpo_alpha 0, read as such
     * @param labelSmoothing TRL {@code label_smoothing} of the sigmoid loss
     * @param simpoGamma     TRL {@code simpo_gamma} (0.5): SimPO's target margin
     * @param cpoAlpha       TRL {@code cpo_alpha} (1.0): the weight of the chosen completions' NLL
     * @param alpha          TRL {@code alpha}: AlphaPO's reward shape (0: the log-prob)
     */
    record Cpo(double beta, String lossType, double labelSmoothing, double simpoGamma, double cpoAlpha, double alpha) implements Pairwise {
        public static final RunSpec.Defaults DEFAULTS = common(LearningRateDefault.CPO);

        public Cpo {
            if (!(beta > 0)) throw new ConfigException("key 'beta': must be > 0, got " + beta);
            if (!lossType.equals("sigmoid") && !lossType.equals("simpo")) throw new ConfigException("key 'loss_type': expected sigmoid or simpo, got '" + lossType + "'");
            if (!Double.isFinite(alpha)) throw new ConfigException("key 'alpha': must be a finite number, got " + alpha);
        }

        public static Cpo defaults() {
            return new Cpo(BETA, "sigmoid", 0.0, 0.5, 1.0, 0.0);
        }

        public static Cpo read(ConfigTree c) {
            return read(c, defaults(), "cpo");
        }

        /** The CPOConfig keys over {@code d}'s defaults; {@code command} names the method in errors. */
        static Cpo read(ConfigTree c, Cpo d, String command) {
            double beta = c.number("beta", d.beta());
            List<String> types = lossTypes(c, d.lossType());
            if (types.size() != 1 || !List.of("sigmoid", "simpo", "alphapo").contains(types.get(0)))
                throw new ConfigException("key 'loss_type': " + command + " takes sigmoid, simpo or alphapo, got " + types);
            double smoothing = c.number("label_smoothing", d.labelSmoothing());
            double gamma = c.number("simpo_gamma", d.simpoGamma()), cpoAlpha = c.number("cpo_alpha", d.cpoAlpha());
            double alpha = c.number("alpha", d.alpha());
            // alphapo is TRL's shorthand for simpo with cpo_alpha 0, its reward shaped by 'alpha'.
            boolean alphapo = types.get(0).equals("alphapo");
            if (alphapo && cpoAlpha != 0 && c.given("cpo_alpha"))
                throw new ConfigException("key 'cpo_alpha': loss_type alphapo trains without the NLL term (cpo_alpha 0, as TRL's CPOConfig sets it); "
                        + "use loss_type simpo with 'alpha' to keep it");
            String type = alphapo ? "simpo" : types.get(0);
            return c.validated(() -> new Cpo(beta, type, smoothing, gamma, alphapo ? 0.0 : cpoAlpha, alpha));
        }

        @Override
        public TrainingMethod<PreferenceTraining.Pair> training(CausalLM reference) {
            var kind = lossType.equals("simpo") ? PreferenceTraining.Kind.SIMPO : PreferenceTraining.Kind.CPO;
            // The pair loss reads β and label smoothing from a DPO loss config; its loss_type is not used.
            var betaAndSmoothing = new DpoLoss.Config(beta, List.of("sigmoid"), null, labelSmoothing, "reverse_kl", 0.5, 0.05, DpoLoss.Semantics.TRL);
            return new PreferenceTraining(new PreferenceTraining.Settings(kind, betaAndSmoothing, simpoGamma, cpoAlpha, null, 0, 0, null, false,
                    new PreferenceTraining.ReferenceFree(alpha, true)));
        }
    }

    /**
     * {@code tether simpo}: CPO's simpo loss with SimPO's defaults (Meng et al. 2024): β 2.0, no NLL term; TRL trains it
     * with CPOTrainer and CPOConfig (v0.29.1), so its keys are {@link Cpo}'s.
     */
    record Simpo(@JsonUnwrapped Cpo cpo) implements Pairwise {
        /** SimPO's β (the paper's and TRL's SimPO examples): its margin is on length-normalised log-probs, so β is larger. */
        public static final double BETA = 2.0;
        public static final RunSpec.Defaults DEFAULTS = common(LearningRateDefault.CPO);

        public static Simpo defaults() {
            Cpo c = Cpo.defaults();
            return new Simpo(new Cpo(BETA, "simpo", c.labelSmoothing(), c.simpoGamma(), 0.0, c.alpha()));
        }

        public static Simpo read(ConfigTree c) {
            return new Simpo(Cpo.read(c, defaults().cpo(), "simpo"));
        }

        @Override
        public double beta() {
            return cpo.beta();
        }

        @Override
        public TrainingMethod<PreferenceTraining.Pair> training(CausalLM reference) {
            return cpo.training(reference);
        }
    }

    /**
     * A command's method: how its common keys differ ({@link RunSpec.Defaults}), its own keys' reader and its TRL defaults.
     */
    record Binding<M extends PreferenceMethod>(String name, RunSpec.Defaults defaults, Function<ConfigTree, M> reader, Supplier<M> initial) {
        /**
         * The whole run's configuration from YAML and overrides: common keys, the method's, then unknown keys refused;
         * the resolved config (config.yaml) starts with the method's name.
         */
        public RunConfig<M> config(ConfigTree c) {
            RunConfig<M> read = RunConfig.read(c, defaults, t -> {
                M m = reader.apply(t);
                // R-DPO's term is the one DPO key users reach for elsewhere: say why rather than only that it is unknown.
                if (!(m instanceof Dpo) && t.given("rdpo_alpha"))
                    throw new ConfigException("key 'rdpo_alpha': R-DPO's length term is a DPO loss term; " + name + " does not read it");
                return m;
            });
            read.method().check(read.spec());
            Map<String, Object> resolved = new LinkedHashMap<>();
            resolved.put("method", name);
            resolved.putAll(read.spec().resolved());
            return new RunConfig<>(read.spec().withResolved(resolved), read.method());
        }
    }

    /** The commands' methods by name: a new method is one line here. */
    Map<String, Binding<?>> METHODS = table(
            new Binding<>("dpo", Dpo.DEFAULTS, Dpo::read, Dpo::defaults),
            new Binding<>("kto", Kto.DEFAULTS, Kto::read, Kto::defaults),
            new Binding<>("orpo", Orpo.DEFAULTS, Orpo::read, Orpo::defaults),
            new Binding<>("simpo", Simpo.DEFAULTS, Simpo::read, Simpo::defaults),
            new Binding<>("cpo", Cpo.DEFAULTS, Cpo::read, Cpo::defaults));

    /** The method a command names; an unknown name is refused, naming the known ones. */
    static Binding<?> named(String name) {
        Binding<?> b = METHODS.get(name);
        if (b == null) throw new ConfigException("unknown preference method '" + name + "' (known: " + String.join(", ", METHODS.keySet()) + ")");
        return b;
    }

    /** {@code tether <name>}'s configuration from YAML and overrides. */
    static RunConfig<? extends PreferenceMethod> config(String name, ConfigTree c) {
        return named(name).config(c);
    }

    private static Map<String, Binding<?>> table(Binding<?>... bindings) {
        Map<String, Binding<?>> m = new LinkedHashMap<>();
        for (Binding<?> b : bindings) m.put(b.name(), b);
        return Collections.unmodifiableMap(m);
    }

    /**
     * The common keys' defaults of every preference method: TRL's DPOConfig, KTOConfig, ORPOConfig and CPOConfig
     * (v0.29.1) all default truncation_mode to keep_end; prompt limits apply; held-out data optional, none by default.
     */
    private static RunSpec.Defaults common(LearningRateDefault learningRate) {
        return new RunSpec.Defaults(Truncation.Mode.KEEP_END, false, true, 0.0, learningRate, false, true);
    }

    /** {@code loss_type}: one name, or (DPO) a list of them to combine. */
    private static List<String> lossTypes(ConfigTree c, String dflt) {
        List<String> types = new ArrayList<>();
        JsonNode lt = c.raw("loss_type");
        if (lt != null && lt.isArray()) lt.forEach(x -> types.add(x.asText()));
        else types.add(c.string("loss_type", dflt));
        return types;
    }
}
