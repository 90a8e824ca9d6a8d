#!/usr/bin/env python3
"""Reference renderings of hostile message contents for every chat template in ../shared/fixtures.

Renders with jinja2 set up as transformers sets it up in `_compile_jinja_template` (transformers v4.5x,
src/transformers/utils/chat_template_utils.py): ImmutableSandboxedEnvironment(trim_blocks=True,
lstrip_blocks=True) with the loopcontrols extension and a `{% generation %}` tag, its own `tojson` filter
(json.dumps, ensure_ascii=False, indent/separators/sort_keys passed through), and the globals `raise_exception`
(raises TemplateError) and `strftime_now`. Like `apply_chat_template`, it passes `messages`, `tools` (None unless
given), `documents=None`, `add_generation_prompt` and the tokenizer's special tokens as template variables.

Message contents, tool definitions and special-token strings are the data under test: template syntax inside
them ({{ 7*7 }}, {% raw %}, {% for %}, {#, ...) must come out literally, as jinja2 prints any value.

Usage (from the repository root; needs only jinja2, which transformers requires):
    python3 tether-core/src/test/resources/chat-templates/make_hostile_golden.py [FIXTURES_DIR] > \
        tether-core/src/test/resources/chat-templates/hostile-renderings.jsonl

Each output line: source (a template as ChatTemplateGoldenTest.template() finds it: a tokenizer_config.json path
relative to the fixtures directory, or chat_templates/ollama-templates.jsonl#LINE; or paths#NAME with the template
itself in "template", one per path a value can take: variables, loop items, concatenation, macro arguments,
filters, string methods, ...), case, messages, tools (when
given), add_generation_prompt, special_tokens, and expected (the rendering) or expected_error (the message of a
TemplateError the template raised on purpose). The 1 MB-of-braces case is not stored:
ChatTemplateGoldenTest builds it from a short placeholder's rendering.
"""
import json
import pathlib
import sys
from datetime import datetime

import jinja2
import jinja2.ext
import jinja2.nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment

# The hostile contents. Each is template code, an unbalanced delimiter, or a marker some engine might treat
# specially; each must be printed as written.
HOSTILE = [
    "Compute {{ 7*7 }} now",
    "{{ messages }}",
    "{% raw %}",
    "{% for m in messages %}{{ m['content'] }}{% endfor %}",
    "{# an unterminated comment",
    "{% endraw %}}}{%- endif -%}#} %}",
    "{{ raise_exception('injected') }}",
    "{% generation %}x{% endgeneration %} \ue000y\ue001",
    "{{ bos_token }}{% set add_generation_prompt = true %}{{ eos_token }}",
    "  {%- if true -%} A {%- endif -%}\n  {{- '{{' -}}  \n",
    "{% macro m() %}{{ caller() }}{% endmacro %}{% call m() %}{{ 'x' * 9 }}{% endcall %}",
    "{{ '<|im_end|>' }}<|im_end|>{% include 'x' %}{% import 'y' as z %}",
    "${7*7} #{7*7} {{7*'7'}} {{ ''.__class__ }} {% print 42 %}{{ 1 }}{{",
    "<!--<!-- {{ c }} -->--> <b>{% raw %}</b> &lt;{{ x }}&gt; &amp;amp; a\u00a0b\u2028c &#123;&#123; 7*7 }}",
    "\u00a0\x01 {{ 7*7 }}\u2028 \x1f\u0085",
    # (no astral character within 7 characters of either end: Jinjava slices strings by UTF-16 units, Python by
    # code points, so 'content[-3:]' would split the pair)
    "quotes \U0001F600 ' \" \\' \\\" \\\\ \\n \\u0041 \b\x00 {{ '\\'' }} \ufeff",
]

# Conversations built from the hostile contents, in the shapes templates accept (or refuse, with their error).
CASES = [
    ("user", [("user", 0)], True),
    ("user-assistant-user", [("user", 1), ("assistant", 2), ("user", 3)], True),
    ("system-user-assistant", [("system", 4), ("user", 5), ("assistant", 6)], False),
    ("two-turns", [("user", 7), ("assistant", 8), ("user", 9), ("assistant", 10)], False),
    ("braces-everywhere", [("user", 11), ("assistant", 12)], True),
    ("markup-and-odd-spaces", [("user", 14), ("assistant", 13)], False),
    ("quotes-and-escapes", [("user", 15)], True),
]

HOSTILE_TOOLS = [{
    "type": "function",
    "function": {
        "name": "lookup_{{ 7*7 }}",
        "description": "Finds {% raw %} an order {{ order_id }} {# by id %}",
        "parameters": {
            "type": "object",
            "properties": {"order_id": {"type": "string", "description": "{% for x in y %}{{ x }}"}},
            "required": ["order_id"],
        },
    },
}]

# Every path a value can take through a template, each as a small template of its own (source "paths#NAME",
# the template stored in the row): a hostile value must come out literally whichever path it took.
PATH_TEMPLATES = {
    "variable": "{% set c = messages[0]['content'] %}{{ c }}|{% set d = c %}{{ d }}",
    "loop-item": "{% for m in messages %}{{ m.content }}|{{ m['content'] }}|{{ loop.index }}\n{% endfor %}",
    "concatenation": "{% for m in messages %}{{ '<|' + m['role'] + '|>\n' + m['content'] + '<|end|>\n' }}"
                     "{{ m.content ~ '~' ~ m.role }}{% endfor %}",
    "macro-arguments": "{% macro show(x, y='none') %}[{{ x }}/{{ y }}]{% endmacro %}"
                       "{% for m in messages %}{{ show(m.content, y=m['content']) }}{{ show(m.content) }}{% endfor %}",
    "caller": "{% macro wrap(tag) %}<{{ tag }}>{{ caller() }}</{{ tag }}>{% endmacro %}"
              "{% for m in messages %}{% call wrap(m.role) %}{{ m.content }}{% endcall %}{% endfor %}",
    "set-block": "{% for m in messages %}{% set block %}({{ m.content }}){% endset %}{{ block }}{% endfor %}",
    "namespace": "{% set ns = namespace(text='') %}{% for m in messages %}{% set ns.text = ns.text + m.content %}"
                 "{% endfor %}{{ ns.text }}",
    "filters": "{% for m in messages %}{{ m.content | trim }}|{{ m.content | replace('7', '8') }}|{{ m.content | upper }}"
               "|{{ m.content | lower }}|{{ m.content | striptags }}|{{ m.content | string }}|{{ m.content | default('') }}"
               "|{{ [m.content, m.role] | join('+') }}|{{ m.content | tojson }}\n{% endfor %}",
    "string-methods": "{% for m in messages %}{{ m.content.strip() }}|{{ m.content.upper() }}|{{ m.content.replace('{', '{') }}"
                      "|{{ m.content.split('%') | join('%') }}|{{ m.content.lstrip('{ ') }}|{{ m.content[:7] }}"
                      "{{ m.content[-3:] }}\n{% endfor %}",
    "dict-items": "{% for m in messages %}{% for k, v in m.items() %}{{ k }}={{ v }};{% endfor %}{% endfor %}",
    "tojson-all": "{{ messages | tojson }}{{ messages | tojson(indent=2) }}{{ tools | tojson }}",
    "generation": "{% for m in messages %}{% if m.role == 'assistant' %}{% generation %}{{ m.content }}{{ eos_token }}"
                  "{% endgeneration %}{% else %}{{ m.content }}{% endif %}{% endfor %}",
    "special-tokens": "{{ bos_token }}{{ bos_token + messages[0].content + eos_token }}{{ eos_token | trim }}",
}

SPECIAL_KEYS = ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token")


class GenerationTag(jinja2.ext.Extension):
    """transformers' AssistantTracker tag, without the index tracking (not used here): renders its body."""
    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        return jinja2.nodes.CallBlock(self.call_method("_body"), [], [], body).set_lineno(lineno)

    def _body(self, caller):
        return caller()


def environment():
    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def strftime_now(fmt):
        return datetime.now().strftime(fmt)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[GenerationTag, jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


def special_tokens(config):
    out = {}
    for key in SPECIAL_KEYS:
        v = config.get(key)
        if isinstance(v, dict):
            v = v.get("content")
        if isinstance(v, str):
            out[key] = v
    return out


def templates(fixtures):
    """(source, template, special tokens) for every chat template under the fixtures directory."""
    ollama = fixtures / "chat_templates" / "ollama-templates.jsonl"
    for i, line in enumerate(ollama.read_text(encoding="utf-8").splitlines()):
        if line.strip():
            yield f"chat_templates/ollama-templates.jsonl#{i}", next(iter(json.loads(line).values())), \
                {"bos_token": "<s>", "eos_token": "</s>"}
    for path in sorted(fixtures.rglob("*tokenizer_config*.json")):
        config = json.loads(path.read_text(encoding="utf-8"))
        t = config.get("chat_template")
        if isinstance(t, list):
            t = next((n["template"] for n in t if n.get("name") == "default"), None)
        if isinstance(t, str):
            yield str(path.relative_to(fixtures)), t, special_tokens(config)


def render(env, template, messages, add_generation_prompt, specials, tools=None):
    try:
        return {"expected": env.from_string(template).render(
            messages=messages, tools=tools, documents=None, add_generation_prompt=add_generation_prompt, **specials)}
    except jinja2.exceptions.TemplateError as e:
        if type(e) is not jinja2.exceptions.TemplateError:
            raise  # only errors a template raises on purpose are golden; anything else is a broken case
        return {"expected_error": f"TemplateError: {e.message}"}


def main():
    fixtures = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/fixtures")
    env = environment()
    for source, template, specials in templates(fixtures):
        rows = []
        for name, shape, gen in CASES:
            messages = [{"role": role, "content": HOSTILE[k]} for role, k in shape]
            rows.append({"case": name, "messages": messages, "add_generation_prompt": gen, "special_tokens": specials})
        messages = [{"role": "user", "content": HOSTILE[0]}]
        rows.append({"case": "hostile-tools", "messages": messages, "tools": HOSTILE_TOOLS,
                     "add_generation_prompt": True, "special_tokens": specials})
        hostile_specials = {k: "{{ 7*7 }}{% raw %}" + v for k, v in specials.items()}
        rows.append({"case": "hostile-special-tokens", "messages": [{"role": "user", "content": HOSTILE[1]}],
                     "add_generation_prompt": True, "special_tokens": hostile_specials})
        for row in rows:
            row.update(render(env, template, row["messages"], row["add_generation_prompt"], row["special_tokens"],
                              row.get("tools")))
            print(json.dumps({"source": source, **row}, ensure_ascii=False))
    everything = [{"role": "user" if k % 2 == 0 else "assistant", "content": c} for k, c in enumerate(HOSTILE)]
    for name, template in PATH_TEMPLATES.items():
        row = {"source": f"paths#{name}", "template": template, "case": name, "messages": everything,
               "tools": HOSTILE_TOOLS, "add_generation_prompt": False,
               "special_tokens": {"bos_token": "{{ 7*7 }}<s>", "eos_token": " {% raw %}</s> "}}
        row.update(render(env, template, row["messages"], False, row["special_tokens"], row["tools"]))
        print(json.dumps(row, ensure_ascii=False))


if __name__ == "__main__":
    main()
