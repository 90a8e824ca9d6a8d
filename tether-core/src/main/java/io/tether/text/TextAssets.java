package io.tether.text;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;

/** The text side of a model directory: its tokenizer.json and, if it has one, its chat template. */
public record TextAssets(Tokenizer tokenizer, ChatTemplate template) implements AutoCloseable {
    /** Empty when the directory has no tokenizer.json (token-id input still works). */
    public static Optional<TextAssets> load(Path dir) {
        if (!Files.isRegularFile(dir.resolve("tokenizer.json"))) return Optional.empty();
        HfTokenizer tokenizer = HfTokenizer.load(dir);
        ChatTemplate template = null;
        Path config = dir.resolve("tokenizer_config.json");
        if (Files.isRegularFile(config)) {
            try {
                template = ChatTemplate.fromTokenizerConfig(config, null);
            } catch (ChatTemplateException noTemplate) {
                template = null;   // a base model: text prompts work, message lists will say they need a template
            }
        }
        return Optional.of(new TextAssets(tokenizer, template));
    }

    @Override
    public void close() {
        tokenizer.close();
    }
}
