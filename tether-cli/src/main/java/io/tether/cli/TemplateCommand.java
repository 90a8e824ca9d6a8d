package io.tether.cli;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;

import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.ObjectMapper;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParentCommand;

import io.tether.data.DataFormatException;
import io.tether.text.ChatTemplate;

@Command(name = "template", mixinStandardHelpOptions = true,
        description = {"Print exactly what a tokenizer's chat template renders for a JSON array of {role, content} messages",
                "(no newline added), or exit 2 with the template's own error."})
final class TemplateCommand implements Callable<Integer> {
    @ParentCommand TetherCommand root;

    @Option(names = "--tokenizer", required = true, description = "directory holding tokenizer_config.json with a chat_template")
    Path tokenizer;

    @Option(names = "--messages", required = true, description = "JSON file: an array of messages")
    Path messages;

    @Option(names = "--add-generation-prompt", description = "end with the assistant's turn header")
    boolean addGenerationPrompt;

    @Option(names = "--tools", description = "JSON file: an array of tool definitions passed to the template as 'tools'")
    Path tools;

    @Option(names = "--name", description = "which template of a named list (default: 'default')")
    String name;

    private static final ObjectMapper JSON = new ObjectMapper();

    @Override
    public Integer call() throws IOException {
        ChatTemplate t = ChatTemplate.fromTokenizerConfig(tokenizer.resolve("tokenizer_config.json"), name);
        List<Map<String, Object>> msgs = readJson(messages, new TypeReference<>() {});
        Map<String, Object> extra = new LinkedHashMap<>();
        if (tools != null) extra.put("tools", readJson(tools, new TypeReference<List<Object>>() {}));
        String out = t.render(msgs, addGenerationPrompt, extra).text();
        PrintWriter w = root.spec.commandLine().getOut();
        w.print(out);
        w.flush();
        return 0;
    }

    private static <T> T readJson(Path file, TypeReference<T> type) {
        try {
            return JSON.readValue(Files.readString(file), type);
        } catch (NoSuchFileException e) {
            throw new DataFormatException(file, 0, "file not found");
        } catch (IOException e) {
            throw new DataFormatException(file, 0, "expected " + (type.getType().getTypeName().contains("Map") ? "a JSON array of {role, content} objects" : "a JSON array") + ": " + e.getMessage().lines().findFirst().orElse(""));
        }
    }
}
