package io.tether.eval;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Pattern;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import io.tether.data.DataFormatException;
import io.tether.data.PreferencePair;
import io.tether.data.PreferenceReader;
import io.tether.data.PreferenceStats;
import io.tether.data.Problems;
import io.tether.data.PromptOnly;
import io.tether.data.RatedCompletions;
import io.tether.data.UnpairedFeedback;

/**
 * Reads a dataset and says which method its signal suits, with the settings and the reasons, following the seed's
 * map: pairs → DPO (IPO when labels are near-deterministic; ORPO or SimPO when memory is tight, no reference),
 * binary thumbs → KTO (with the desirable/undesirable weight that balances them), scalar ratings → pairs by
 * binarizing, then DPO, or a reward model for PPO/RLOO, verifiable answers → GRPO with the exact-answer reward,
 * prompts alone → an online method against a reward model. Size, balance and length bias adjust the advice.
 */
public final class MethodAdvisor {
    private MethodAdvisor() {}

    /** The advice: a command, the settings to start from, why, and what to watch. */
    public record Advice(String signal, long records, String method, List<String> settings, List<String> reasons, List<String> warnings,
                         ObjectNode stats) {}

    /** A final answer a program can check: GSM8K's "#### n", or a bare number. */
    private static final Pattern VERIFIABLE = Pattern.compile("####\\s*-?[\\d,.]+|^\\s*-?[\\d,]*\\.?\\d+\\s*$");

    public static Advice advise(Path file, PreferenceReader.Format format, boolean memoryTight) {
        PreferenceStats stats = new PreferenceStats(null);
        long[] pairs = {0}, unanimous = {0}, withVotes = {0}, unpaired = {0}, rated = {0}, prompts = {0}, verifiable = {0};
        Problems problems = new Problems(100);
        long n = PreferenceReader.read(file, format, problems, (r, raw) -> {
            stats.accept(r);
            if (r instanceof PreferencePair p) {
                if (p.label() == PreferencePair.Label.CHOSEN) pairs[0]++;
                if (p.votes() != null && p.votes().size() > 1) {
                    withVotes[0]++;
                    if (p.agreement() != null && p.agreement() >= 1.0) unanimous[0]++;
                }
            } else if (r instanceof UnpairedFeedback) {
                unpaired[0]++;
            } else if (r instanceof RatedCompletions) {
                rated[0]++;
            } else if (r instanceof PromptOnly) {
                prompts[0]++;
                JsonNode answer = raw.get("answer");
                if (answer != null && answer.isValueNode() && VERIFIABLE.matcher(answer.asText()).find()) verifiable[0]++;
            }
        });
        if (n == 0) throw new DataFormatException(file, 0, "no usable records" + (problems.details().isEmpty() ? "" : ": " + problems.details().get(0)));
        List<String> warnings = new ArrayList<>();
        ObjectNode report = stats.report(warnings);
        List<String> settings = new ArrayList<>(), reasons = new ArrayList<>();
        String signal, method;
        if (pairs[0] > 0 && pairs[0] >= unpaired[0] && pairs[0] >= rated[0]) {
            signal = "pairs";
            double agreement = withVotes[0] == 0 ? Double.NaN : (double) unanimous[0] / withVotes[0];
            if (memoryTight) {
                method = "tether orpo";
                reasons.add("memory is tight: ORPO (or SimPO) needs no reference model and folds SFT into the preference step");
            } else if (!Double.isNaN(agreement) && agreement >= 0.9) {
                method = "tether dpo (loss_type: ipo)";
                settings.add("loss_type: ipo");
                reasons.add(String.format("labels are near-deterministic (%.0f%% of multiply-annotated pairs unanimous): DPO's sigmoid pushes such "
                        + "margins without bound, IPO's squared loss regularises toward a finite margin", 100 * agreement));
            } else {
                method = "tether dpo";
                settings.add("beta: 0.1");
                reasons.add(pairs[0] + " chosen/rejected pairs: DPO is the simple, strong baseline for paired preferences");
            }
            JsonNode lengths = report.path("lengths");
            if (lengths.path("chosen_longer_share").asDouble(0.5) >= 0.65) {
                String bias = String.format("chosen is the longer answer in %.0f%% of pairs: ", 100 * lengths.path("chosen_longer_share").asDouble());
                if (method.contains("ipo")) {
                    // R-DPO's term shifts the sigmoid's logit, which IPO's squared loss does not have.
                    settings.add("ld_alpha: 0.5");
                    reasons.add(bias + "discount tokens past the shorter answer so the policy learns quality, not length");
                } else {
                    settings.add("rdpo_alpha: 0.02 (R-DPO; or ld_alpha: 0.5)");
                    reasons.add(bias + "R-DPO's length term lets length explain its share of each preference, so the policy learns quality, "
                            + "not length (on the refund demo's pairs, chosen longer in 76%, 160 steps won 0.780 against SFT with it and 0.685 without)");
                }
            }
            if (pairs[0] < 1000) {
                settings.add("num_train_epochs: 3");
                reasons.add("fewer than 1,000 pairs: several epochs, and watch the held-out reward margin for overfitting");
            }
        } else if (unpaired[0] > 0 && unpaired[0] >= rated[0]) {
            signal = "binary feedback";
            method = "tether kto";
            JsonNode u = report.path("unpaired");
            double ratio = u.path("desirable_to_undesirable").asDouble(Double.NaN);
            if (Double.isFinite(ratio) && ratio < 1) settings.add(String.format("desirable_weight: %.2f", 1 / ratio));
            else if (Double.isFinite(ratio) && ratio > 4.0 / 3) settings.add(String.format("undesirable_weight: %.2f", ratio / (4.0 / 3)));
            reasons.add(unpaired[0] + " thumbs-up/down rows: KTO learns from unpaired binary feedback; weights keep desirable:undesirable in 1 to 4/3");
        } else if (rated[0] > 0) {
            signal = "scalar ratings";
            method = "tether data convert --to trl --binarize best-worst, then tether dpo";
            reasons.add(rated[0] + " prompts with rated completions: binarize best vs worst into pairs for DPO, or train a reward model (tether rm train) "
                    + "on the pairs and optimise against it online (tether ppo / tether rloo)");
        } else if (verifiable[0] > 0) {
            signal = "verifiable answers";
            method = "tether grpo";
            settings.add("reward_answer_field: answer");
            settings.add("num_generations: 8");
            reasons.add(String.format("%d of %d prompts carry a checkable final answer: GRPO with the exact-answer reward needs no reward model "
                    + "and cannot be reward-hacked by style", verifiable[0], prompts[0]));
        } else {
            signal = "prompts only";
            method = "tether online-dpo (or tether ppo) with reward_model";
            reasons.add(prompts[0] + " prompts without labels or answers: the signal must come from a reward model or judge, online");
        }
        return new Advice(signal, n, method, settings, reasons, warnings, report);
    }
}
