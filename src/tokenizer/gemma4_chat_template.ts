/**
 * Gemma 4's chat format, used when a Gemma 4 folder carries no template of its own
 * (chat_template.jinja or tokenizer_config.json's "chat_template" always win). It follows the
 * released google/gemma-4-E2B-it template's shape, without its tool-declaration machinery
 * (tools go through src/engine/tools.ts, as for Gemma 3n):
 *
 *   <bos>[<|turn>system\n[<|think|>]{system}<turn|>\n]
 *   <|turn>user\n{text}<turn|>\n<|turn>model\n{reply}<turn|>\n ... <|turn>model\n
 *
 * Unlike Gemma 3n's, the system prompt has its own turn. An image part becomes
 * "\n\n<|image|>\n\n" and an audio part "<|audio|>"; the processor then expands each into
 * `<|image>` + N × `<|image|>` + `<image|>` (src/engine/gemma4_towers.ts). A model turn's
 * thinking (`<|channel>…<channel|>`) is dropped from the history, as the released template does.
 * `enable_thinking` (a template variable) adds `<|think|>` to the system turn.
 */
export const GEMMA4_CHAT_TEMPLATE = `{{- bos_token -}}
{%- macro strip_thinking(text) -%}
    {%- set ns = namespace(result='') -%}
    {%- for part in text.split('<channel|>') -%}
        {%- if '<|channel>' in part -%}
            {%- set ns.result = ns.result + part.split('<|channel>')[0] -%}
        {%- else -%}
            {%- set ns.result = ns.result + part -%}
        {%- endif -%}
    {%- endfor -%}
    {{- ns.result | trim -}}
{%- endmacro -%}
{%- set thinking = enable_thinking is defined and enable_thinking -%}
{%- set has_system = messages[0]['role'] == 'system' or messages[0]['role'] == 'developer' -%}
{%- if thinking or has_system -%}
    {{- '<|turn>system\\n' -}}
    {%- if thinking -%}
        {{- '<|think|>' -}}
    {%- endif -%}
    {%- if has_system -%}
        {%- if messages[0]['content'] is string -%}
            {{- messages[0]['content'] | trim -}}
        {%- else -%}
            {%- for item in messages[0]['content'] -%}
                {%- if item['type'] == 'text' -%}
                    {{- item['text'] | trim -}}
                {%- endif -%}
            {%- endfor -%}
        {%- endif -%}
    {%- endif -%}
    {{- '<turn|>\\n' -}}
{%- endif -%}
{%- for message in messages -%}
    {%- if not (loop.first and has_system) -%}
        {%- set role = 'model' if message['role'] == 'assistant' else message['role'] -%}
        {{- '<|turn>' + role + '\\n' -}}
        {%- if message['content'] is string -%}
            {%- if role == 'model' -%}
                {{- strip_thinking(message['content']) -}}
            {%- else -%}
                {{- message['content'] | trim -}}
            {%- endif -%}
        {%- else -%}
            {%- for item in message['content'] -%}
                {%- if item['type'] == 'text' -%}
                    {%- if role == 'model' -%}
                        {{- strip_thinking(item['text']) -}}
                    {%- else -%}
                        {{- item['text'] | trim -}}
                    {%- endif -%}
                {%- elif item['type'] == 'image' -%}
                    {{- '\\n\\n<|image|>\\n\\n' -}}
                {%- elif item['type'] == 'audio' -%}
                    {{- '<|audio|>' -}}
                {%- endif -%}
            {%- endfor -%}
        {%- endif -%}
        {{- '<turn|>\\n' -}}
    {%- endif -%}
{%- endfor -%}
{%- if add_generation_prompt -%}
    {{- '<|turn>model\\n' -}}
{%- endif -%}
`;

/** Pieces that end a Gemma 4 model turn (with the config's EOS): the instruction-tuned generation config's. */
export const GEMMA4_STOP_PIECES = ['<turn|>', '<|tool_response>'] as const;
