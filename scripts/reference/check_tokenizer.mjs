// Checks that @huggingface/tokenizers (the JS loader the extension uses) encodes texts to
// exactly the ids our Python byte-level BPE produced, decodes them back, and that the
// tokenizer_config.json chat template renders with @huggingface/jinja.
//
//   node scripts/reference/check_tokenizer.mjs FOLDER[:CASES.json] ...
//
// FOLDER holds tokenizer.json + tokenizer_config.json; CASES.json (default FOLDER/reference.json)
// holds {"texts": [...], "text_ids": [[...], ...]} written by the Python side.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Tokenizer } from "@huggingface/tokenizers";
import { Template } from "@huggingface/jinja";

const readJson = (path) => JSON.parse(readFileSync(path, "utf8"));
let failures = 0;

for (const arg of process.argv.slice(2)) {
  const [folder, casesPath = join(folder, "reference.json")] = arg.split(":");
  const config = readJson(join(folder, "tokenizer_config.json"));
  const tokenizer = new Tokenizer(readJson(join(folder, "tokenizer.json")), config);
  const { texts, text_ids: expected } = readJson(casesPath);
  let ok = 0;
  texts.forEach((text, i) => {
    const ids = tokenizer.encode(text).ids;
    const decoded = tokenizer.decode(ids);
    if (JSON.stringify(ids) !== JSON.stringify(expected[i]) || decoded !== text) {
      failures++;
      console.log(`FAIL ${folder} text ${i} ${JSON.stringify(text)}`);
      console.log(`  python ${JSON.stringify(expected[i])}\n  js     ${JSON.stringify(ids)}`);
      console.log(`  decoded ${JSON.stringify(decoded)}`);
    } else ok++;
  });
  const chat = new Template(config.chat_template).render({
    messages: [
      { role: "user", content: "Hi" },
      { role: "assistant", content: "Hello." },
    ],
    add_generation_prompt: true,
  });
  const wantChat = "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello.<|im_end|>\n<|im_start|>assistant\n";
  if (chat !== wantChat) {
    failures++;
    console.log(`FAIL ${folder} chat template rendered ${JSON.stringify(chat)}`);
  }
  console.log(`${folder}: ${ok}/${texts.length} texts identical ids and round trip; chat template ${chat === wantChat ? "ok" : "WRONG"}`);
}
process.exit(failures ? 1 : 0);
