/**
 * Syntax highlighting for the run registry's languages (`images/languages.toml`): python,
 * javascript, c, cpp, java, go, rust, bash. Each grammar is its own chunk, loaded when a
 * file of that language is opened, so the page's first load stays small.
 */
import { StreamLanguage, type LanguageSupport } from '@codemirror/language'

type Loaded = LanguageSupport | StreamLanguage<unknown>

/** The registry's language ids, with their file extensions. */
export const LANGUAGES: ReadonlyArray<{ id: string; name: string; extensions: readonly string[]; load: () => Promise<Loaded> }> = [
  { id: 'python', name: 'Python', extensions: ['py', 'pyw'], load: async () => (await import('@codemirror/lang-python')).python() },
  { id: 'javascript', name: 'JavaScript', extensions: ['js', 'mjs', 'cjs', 'jsx'], load: async () => (await import('@codemirror/lang-javascript')).javascript({ jsx: true }) },
  { id: 'typescript', name: 'TypeScript', extensions: ['ts', 'tsx', 'mts'], load: async () => (await import('@codemirror/lang-javascript')).javascript({ typescript: true, jsx: true }) },
  { id: 'c', name: 'C', extensions: ['c', 'h'], load: async () => (await import('@codemirror/lang-cpp')).cpp() },
  { id: 'cpp', name: 'C++', extensions: ['cpp', 'cc', 'cxx', 'hpp', 'hh', 'hxx'], load: async () => (await import('@codemirror/lang-cpp')).cpp() },
  { id: 'java', name: 'Java', extensions: ['java'], load: async () => (await import('@codemirror/lang-java')).java() },
  { id: 'go', name: 'Go', extensions: ['go'], load: async () => (await import('@codemirror/lang-go')).go() },
  { id: 'rust', name: 'Rust', extensions: ['rs'], load: async () => (await import('@codemirror/lang-rust')).rust() },
  {
    id: 'bash',
    name: 'Bash',
    extensions: ['sh', 'bash'],
    load: async () => StreamLanguage.define((await import('@codemirror/legacy-modes/mode/shell')).shell),
  },
]

/** The language of a file, by its extension. */
export function languageOf (path: string): (typeof LANGUAGES)[number] | undefined {
  const name = path.split('/').pop() ?? ''
  const dot = name.lastIndexOf('.')
  if (dot <= 0) return undefined
  const ext = name.slice(dot + 1).toLowerCase()
  return LANGUAGES.find(l => l.extensions.includes(ext))
}

/** The starter program a new session of each registry language begins with, under the file
 * name the registry runs (`main_file`). */
export const STARTERS: Readonly<Record<string, { path: string; text: string }>> = {
  python: { path: 'main.py', text: 'name = input("Your name? ")\nprint(f"Hello, {name}!")\n' },
  javascript: { path: 'main.js', text: 'const name = require("fs").readFileSync(0, "utf8").trim()\nconsole.log(`Hello, ${name}!`)\n' },
  c: { path: 'main.c', text: '#include <stdio.h>\n\nint main(void) {\n    char name[64];\n    if (scanf("%63s", name) == 1) printf("Hello, %s!\\n", name);\n    return 0;\n}\n' },
  cpp: { path: 'main.cpp', text: '#include <iostream>\n#include <string>\n\nint main() {\n    std::string name;\n    std::getline(std::cin, name);\n    std::cout << "Hello, " << name << "!" << std::endl;\n}\n' },
  java: { path: 'Main.java', text: 'import java.util.Scanner;\n\npublic class Main {\n    public static void main(String[] args) {\n        String name = new Scanner(System.in).nextLine();\n        System.out.println("Hello, " + name + "!");\n    }\n}\n' },
  go: { path: 'main.go', text: 'package main\n\nimport (\n\t"bufio"\n\t"fmt"\n\t"os"\n)\n\nfunc main() {\n\tname, _ := bufio.NewReader(os.Stdin).ReadString(\'\\n\')\n\tfmt.Printf("Hello, %s!\\n", name)\n}\n' },
  rust: { path: 'main.rs', text: 'use std::io::stdin;\n\nfn main() {\n    let mut name = String::new();\n    stdin().read_line(&mut name).unwrap();\n    println!("Hello, {}!", name.trim());\n}\n' },
  bash: { path: 'main.sh', text: 'read -r name\necho "Hello, $name!"\n' },
}
