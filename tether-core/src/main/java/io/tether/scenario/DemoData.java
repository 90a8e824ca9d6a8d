package io.tether.scenario;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;

import com.fasterxml.jackson.databind.ObjectMapper;

import io.tether.engine.AtomicFiles;
import io.tether.engine.ConfigException;

/**
 * The demo's datasets, written from one seed: SFT demonstrations, annotated preference pairs, KTO thumbs, GRPO
 * prompts carrying their case, and a pretraining corpus of answers of every quality. Each kind is split by case into
 * {@code <kind>.train.jsonl} and {@code <kind>.eval.jsonl}, so no prompt of the eval files is ever trained on, and
 * {@code manifest.json} records how everything was made.
 */
public final class DemoData {
    private DemoData() {}

    /** The share of cases held out for evaluation. */
    public static final double EVAL_SHARE = 0.1;
    /** Labelled pairs per case: each of different styles, so the pairs of one prompt teach different comparisons. */
    static final int PAIRS_PER_CASE = 2;
    /** Answers per case judged on their own for KTO. */
    static final int THUMBS_PER_CASE = 3;
    public static final List<String> KINDS = List.of("sft", "pairs", "kto", "grpo", "corpus");
    /**
     * How often the support agents whose answers make the SFT demonstrations write each style, in
     * {@link ResponseStyle} order. Real demonstrations are of mixed quality: agents pad, over-format, give in to a
     * customer's false claim and sometimes get the policy wrong. SFT imitates all of it, which is what preference
     * methods are then for. Two thirds of the answers are correct in substance.
     */
    static final double[] DEMONSTRATOR_MIX = {0.30, 0.10, 0.25, 0.10, 0.10, 0.10, 0.05};

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final GoldRubric RUBRIC = new GoldRubric();

    /** How many cases went to each split, and the rows of each file by name. */
    public record Summary(int trainCases, int evalCases, Map<String, Integer> rows) {}

    /**
     * Writes every dataset for {@code cases} cases of {@code seed} into {@code dir}, each file atomically.
     * {@code annotator} labels the pairs and the thumbs and its stream advances as it does, so the same files come
     * only from a fresh annotator with the same settings.
     */
    public static Summary write(Path dir, int cases, long seed, NoisyAnnotator annotator) throws IOException {
        if (cases < 2) throw new ConfigException("need at least 2 cases to have both a train and an eval split, got " + cases);
        List<Case> all = RefundWorld.prompts(cases, seed);
        Set<String> evalIds = evalIds(all, seed);
        // One answer stream per dataset, so that changing how one is built leaves the others' answer texts as they
        // were (the annotator's labels are a stream of their own).
        Random sft = new Random(seed * 31 + 1), pairs = new Random(seed * 31 + 2), kto = new Random(seed * 31 + 3), corpus = new Random(seed * 31 + 4);
        Map<String, List<Map<String, Object>>> rows = new LinkedHashMap<>();
        for (String kind : KINDS) for (String split : List.of("train", "eval")) rows.put(kind + "." + split, new ArrayList<>());
        for (Case c : all) {
            String split = evalIds.contains(c.id()) ? ".eval" : ".train";
            ResponseStyle demonstrated = demonstratorStyle(sft);
            rows.get("sft" + split).add(row("prompt", c.prompt(), "completion", RefundWorld.respond(c, demonstrated, sft), "prompt_id", c.id(),
                    "generator_style", NoisyAnnotator.style(demonstrated)));
            for (ResponseStyle[] styles : distinctPairs(pairs, PAIRS_PER_CASE))
                rows.get("pairs" + split).add(annotator.preferenceRow(c, styles[0], RefundWorld.respond(c, styles[0], pairs), styles[1], RefundWorld.respond(c, styles[1], pairs)));
            rows.get("kto" + split).addAll(thumbs(c, annotator, kto));
            Map<String, Object> prompt = new LinkedHashMap<>(c.toRecord());
            prompt.put("prompt_id", c.id());
            rows.get("grpo" + split).add(prompt);
            for (ResponseStyle style : ResponseStyle.values())
                rows.get("corpus" + split).add(row("text", c.prompt() + RefundWorld.respond(c, style, corpus), "prompt_id", c.id(), "generator_style", NoisyAnnotator.style(style)));
        }
        Map<String, Integer> counts = new LinkedHashMap<>();
        for (var e : rows.entrySet()) {
            writeJsonl(dir.resolve(e.getKey() + ".jsonl"), e.getValue());
            counts.put(e.getKey() + ".jsonl", e.getValue().size());
        }
        Summary summary = new Summary(cases - evalIds.size(), evalIds.size(), counts);
        Map<String, Object> manifest = new LinkedHashMap<>();
        manifest.put("generator", RefundWorld.GENERATOR);
        manifest.put("rubric", GoldRubric.VERSION);
        manifest.put("annotator", annotator.name());
        Map<String, Double> mix = new LinkedHashMap<>();
        for (ResponseStyle style : ResponseStyle.values()) mix.put(NoisyAnnotator.style(style), DEMONSTRATOR_MIX[style.ordinal()]);
        manifest.put("sft_demonstrator_mix", mix);
        manifest.put("seed", seed);
        manifest.put("cases", cases);
        manifest.put("eval_share", EVAL_SHARE);
        manifest.put("train_cases", summary.trainCases());
        manifest.put("eval_cases", summary.evalCases());
        manifest.put("rows", counts);
        AtomicFiles.write(dir.resolve("manifest.json"), w -> w.write(JSON.writerWithDefaultPrettyPrinter().writeValueAsString(manifest) + "\n"));
        return summary;
    }

    /** A style drawn from {@link #DEMONSTRATOR_MIX}. */
    static ResponseStyle demonstratorStyle(Random rng) {
        double u = rng.nextDouble();
        ResponseStyle[] styles = ResponseStyle.values();
        for (int i = 0; i < styles.length - 1; i++) {
            u -= DEMONSTRATOR_MIX[i];
            if (u < 0) return styles[i];
        }
        return styles[styles.length - 1];
    }

    /** The held-out case ids: a seeded shuffle's first {@link #EVAL_SHARE}, at least one, never all. */
    private static Set<String> evalIds(List<Case> all, long seed) {
        List<String> ids = new ArrayList<>(all.stream().map(Case::id).toList());
        Collections.shuffle(ids, new Random(seed * 31 + 5));
        int n = Math.min(all.size() - 1, Math.max(1, (int) Math.round(all.size() * EVAL_SHARE)));
        return new HashSet<>(ids.subList(0, n));
    }

    private static List<ResponseStyle[]> distinctPairs(Random rng, int n) {
        ResponseStyle[] styles = ResponseStyle.values();
        List<ResponseStyle[]> out = new ArrayList<>();
        Set<Integer> seen = new HashSet<>();
        while (out.size() < n) {
            int a = rng.nextInt(styles.length), b = rng.nextInt(styles.length);
            if (a == b || !seen.add(Math.min(a, b) * styles.length + Math.max(a, b))) continue;
            out.add(new ResponseStyle[] {styles[a], styles[b]});
        }
        return out;
    }

    /** KTO rows for distinct answers of distinct styles (the same text twice could be labelled both ways: a contradiction). */
    private static List<Map<String, Object>> thumbs(Case c, NoisyAnnotator annotator, Random rng) {
        List<ResponseStyle> styles = new ArrayList<>(List.of(ResponseStyle.values()));
        Collections.shuffle(styles, rng);
        List<Map<String, Object>> out = new ArrayList<>();
        Set<String> texts = new HashSet<>();
        for (ResponseStyle style : styles.subList(0, THUMBS_PER_CASE)) {
            String response = RefundWorld.respond(c, style, rng);
            if (!texts.add(response)) continue;
            Map<String, Object> row = new LinkedHashMap<>();
            row.put("prompt", c.prompt());
            row.put("completion", response);
            row.put("label", annotator.thumbsUp(c, response));
            row.put("prompt_id", c.id());
            row.put("annotator", annotator.name());
            row.put("noise", annotator.noise());
            row.put("length_bias", annotator.lengthBias());
            row.put("rubric", GoldRubric.VERSION);
            row.put("rubric_score", NoisyAnnotator.round(RUBRIC.score(c, response)));
            row.put("generator", RefundWorld.GENERATOR);
            row.put("generator_style", NoisyAnnotator.style(style));
            out.add(row);
        }
        return out;
    }

    /** A row whose fields are written in the order given (Map.of's order changes from run to run, and so would the files). */
    private static Map<String, Object> row(Object... fieldsAndValues) {
        Map<String, Object> row = new LinkedHashMap<>();
        for (int i = 0; i < fieldsAndValues.length; i += 2) row.put((String) fieldsAndValues[i], fieldsAndValues[i + 1]);
        return row;
    }

    private static void writeJsonl(Path file, List<Map<String, Object>> rows) throws IOException {
        AtomicFiles.write(file, w -> {
            for (Map<String, Object> row : rows) {
                w.write(JSON.writeValueAsString(row));
                w.write('\n');
            }
        });
    }
}
