//! A post-pass over rust-hdl's Verilog: every combinational block assigns
//! each of its variables exactly once per evaluation.
//!
//! rust-hdl writes a block's combinational logic as one `always @(*)` with
//! defaults and overrides (`x = 0; ... if (c) x = 1;`). In an event-driven
//! simulator (Icarus, and the commercial ones) each of those assignments is
//! an update event, even when the value ends where it started, so two
//! blocks that read each other's outputs wake each other forever and
//! simulated time stops. The pass computes the block on shadow variables
//! (`x__sa`) and copies each shadow to its variable once, at the end: the
//! final values are the same, the intermediate ones are never seen outside
//! the block, and a variable whose value did not change makes no event.
//! Verilator and yosys see the same text (the card model and synthesis use
//! this output too), so every simulator runs one design.
//!
//! Memories (rust-hdl RAMs) also start zeroed, as block RAM does after
//! configuration and as Verilator models them, so no simulator starts from
//! unknown values the others do not have.

/// Apply the pass to a whole Verilog file (every module).
pub fn single_assignment(verilog: &str) -> String {
    let lines: Vec<&str> = verilog.lines().collect();
    let mut out = String::with_capacity(verilog.len() + verilog.len() / 8);
    let mut i = 0;
    while i < lines.len() {
        if lines[i].trim_start().starts_with("module ") {
            let end = lines[i..].iter().position(|l| l.trim_start().starts_with("endmodule")).map_or(lines.len(), |k| i + k + 1);
            module(&lines[i..end], &mut out);
            i = end;
        } else {
            out.push_str(lines[i]);
            out.push('\n');
            i += 1;
        }
    }
    out
}

/// The `always @(*)` blocks of a module: (first line, one past `end`).
fn comb_blocks(lines: &[&str]) -> Vec<(usize, usize)> {
    let mut v = vec![];
    let mut i = 0;
    while i < lines.len() {
        let t = lines[i].trim_start();
        if t == "always @(*) begin" {
            let indent = &lines[i][..lines[i].len() - t.len()];
            let close = format!("{indent}end");
            if let Some(len) = lines[i + 1..].iter().position(|l| l.trim_end() == close) {
                v.push((i, i + len + 2));
                i += len + 2;
                continue;
            }
        }
        i += 1;
    }
    v
}

fn identifiers(l: &str, into: &mut std::collections::HashSet<String>) {
    let found = std::cell::RefCell::new(Vec::new());
    map_identifiers(l, |w| {
        if !w.is_empty() && !w.starts_with(|c: char| c.is_ascii_digit()) {
            found.borrow_mut().push(w.to_string());
        }
        None
    });
    into.extend(found.into_inner());
}

fn module(lines: &[&str], out: &mut String) {
    let blocks = comb_blocks(lines);
    let inside = |k: usize| blocks.iter().any(|&(a, b)| k >= a && k < b);
    // Registers of this module, and every identifier used outside its
    // combinational blocks (ports in the header, instance connections,
    // sequential logic), declarations aside.
    let mut decls: Vec<(String, String)> = vec![];
    let mut outside = std::collections::HashSet::new();
    for (k, l) in lines.iter().enumerate() {
        let t = l.trim_start();
        if let Some(d) = reg_declaration(t) {
            if !t.starts_with("output ") {
                decls.push(d);
                continue;
            }
            decls.push(d);
        }
        if !inside(k) {
            identifiers(l, &mut outside);
        }
    }
    let mut k = 0;
    while k < lines.len() {
        let line = lines[k];
        let t = line.trim_start();
        if let Some((name, hi, lo)) = memory_declaration(t) {
            // Memories start zeroed, as an FPGA's block RAM does after
            // configuration (and as Verilator's model does): an event-driven
            // simulator would otherwise start them unknown (X).
            let indent = &line[..line.len() - t.len()];
            out.push_str(line);
            out.push('\n');
            let n = format!("{name}__init");
            // Simulators only: synthesis tools define SYNTHESIS, and block
            // RAM is zero after configuration anyway (yosys would unroll
            // the loop into one write per word).
            out.push_str(&format!(
                "`ifndef SYNTHESIS\n{indent}integer {n};\n{indent}initial begin\n{indent}    for ({n} = {lo}; {n} <= {hi}; {n} = {n} + 1) {name}[{n}] = 0;\n{indent}end\n`endif\n"
            ));
            k += 1;
            continue;
        }
        let Some(&(a, b)) = blocks.iter().find(|&&(a, _)| a == k) else {
            out.push_str(line);
            out.push('\n');
            k += 1;
            continue;
        };
        let indent = &line[..line.len() - t.len()];
        let body = &lines[a + 1..b - 1];
        let mut assigned: Vec<String> = Vec::new();
        for l in body {
            if let Some(name) = assigned_name(l) {
                if !assigned.contains(&name) {
                    assigned.push(name);
                }
            }
        }
        // Only what is seen outside the block needs a shadow: a variable
        // read only inside it (a local) changes while the block runs, when
        // nothing can wake on it.
        let shadowed: Vec<(String, String)> = assigned
            .iter()
            .filter(|n| outside.contains(*n))
            .filter_map(|n| decls.iter().find(|(d, _)| d == n).cloned())
            .collect();
        for (name, width) in &shadowed {
            out.push_str(&format!("{indent}reg {width}{};\n", shadow(name)));
        }
        out.push_str(line);
        out.push('\n');
        for l in body {
            out.push_str(&rename(l, &shadowed));
            out.push('\n');
        }
        for (name, _) in &shadowed {
            out.push_str(&format!("{indent}    {name} = {};\n", shadow(name)));
        }
        out.push_str(lines[b - 1]);
        out.push('\n');
        k = b;
    }
}

/// The first module of a Verilog file (rust-hdl writes the top first).
pub fn top_module(verilog: &str) -> Option<&str> {
    verilog.lines().find_map(|l| {
        let rest = l.trim_start().strip_prefix("module ")?;
        let end = rest.find(|c: char| !is_ident(c))?;
        Some(&rest[..end])
    })
}

/// Give rust-hdl's top module (always `top`, its sub-modules `top$...`) the
/// name `name`, so that blocks can be compiled together and beside the card.
pub fn rename_top(verilog: &str, name: &str) -> String {
    let mut out = String::with_capacity(verilog.len() + verilog.len() / 16);
    for line in verilog.lines() {
        out.push_str(&map_identifiers(line, |w| (w == "top" || w.starts_with("top$")).then(|| format!("{name}{}", &w[3..]))));
        out.push('\n');
    }
    out
}

/// `line` with every identifier `w` for which `f(w)` is `Some` replaced.
/// Sized literals (`32'h1f`) are not identifiers.
fn map_identifiers(line: &str, f: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(line.len() + 16);
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        match f(word) {
            Some(new) => out.push_str(&new),
            None => out.push_str(word),
        }
        word.clear();
    };
    let mut literal = false;
    for c in line.chars() {
        if literal && c.is_ascii_alphanumeric() {
            out.push(c);
            continue;
        }
        literal = c == '\'';
        if is_ident(c) {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

fn shadow(name: &str) -> String {
    format!("{name}__sa")
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '$'
}

/// `reg [7:0] x;`, `output reg  [7:0] x;`, `reg  x;` -> (name, "[7:0] ").
fn reg_declaration(t: &str) -> Option<(String, String)> {
    let rest = t.strip_prefix("output ").unwrap_or(t).trim_start();
    let rest = rest.strip_prefix("reg")?;
    if !rest.starts_with(char::is_whitespace) && !rest.starts_with('[') {
        return None;
    }
    let rest = rest.trim_start();
    let (width, rest) = match rest.strip_prefix('[') {
        Some(r) => {
            let close = r.find(']')?;
            (format!("[{}] ", &r[..close]), r[close + 1..].trim_start())
        }
        None => (String::new(), rest),
    };
    let name = rest.strip_suffix(';')?.trim();
    // Memories (`reg [7:0] mem[63:0];`) and anything else are left alone.
    if name.is_empty() || !name.chars().all(is_ident) {
        return None;
    }
    Some((name.to_string(), width))
}

/// `reg[36:0] mem[63:0];` -> (name, high index, low index).
fn memory_declaration(t: &str) -> Option<(String, u64, u64)> {
    let rest = t.strip_prefix("reg")?.trim_start();
    let rest = match rest.strip_prefix('[') {
        Some(r) => r[r.find(']')? + 1..].trim_start(),
        None => rest,
    };
    let rest = rest.strip_suffix("];")?;
    let (name, range) = rest.split_once('[')?;
    let (hi, lo) = range.split_once(':')?;
    let name = name.trim();
    if name.is_empty() || !name.chars().all(is_ident) {
        return None;
    }
    let (hi, lo) = (hi.trim().parse::<u64>().ok()?, lo.trim().parse::<u64>().ok()?);
    Some((name.to_string(), hi.max(lo), hi.min(lo)))
}

/// The variable a blocking assignment statement writes (`x = ...;`).
fn assigned_name(l: &str) -> Option<String> {
    let t = l.trim_start();
    let end = t.find(|c: char| !is_ident(c))?;
    let name = &t[..end];
    let rest = t[end..].trim_start();
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) || !rest.starts_with('=') || rest.starts_with("==") {
        return None;
    }
    Some(name.to_string())
}

/// Replace whole identifiers `name` by their shadow in one line.
fn rename(l: &str, shadowed: &[(String, String)]) -> String {
    map_identifiers(l, |w| shadowed.iter().any(|(n, _)| n == w).then(|| shadow(w)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: &str = "module m(a,y);
    input wire  [3:0] a;
    output reg  [3:0] y;
    reg  t;
    always @(*) begin
        y = 4'h0;
        t = a == 4'h3;
        if (t) begin
            y = a + 4'hf;
        end
    end
endmodule
";

    #[test]
    fn each_variable_is_assigned_once_at_the_end() {
        let v = single_assignment(SRC);
        assert!(v.contains("reg [3:0] y__sa;"), "{v}");
        assert!(!v.contains("t__sa"), "a local read only inside the block needs no shadow: {v}");
        assert!(v.contains("y__sa = 4'h0;") && v.contains("t = a == 4'h3;") && v.contains("if (t) begin"), "{v}");
        assert!(v.contains("y__sa = a + 4'hf;"), "a sized literal's digits are not renamed: {v}");
        let r = rename("y = 32'h1f + f;", &[("f".into(), String::new()), ("y".into(), String::new())]);
        assert_eq!(r, "y__sa = 32'h1f + f__sa;");
        // The block ends by copying each shadow once.
        let body = &v[v.find("always @(*)").unwrap()..];
        assert_eq!(body.matches("        y = y__sa;").count(), 1, "{v}");
        // Outside the block nothing changes.
        assert!(v.starts_with("module m(a,y);\n    input wire  [3:0] a;\n    output reg  [3:0] y;"));
    }

    #[test]
    fn the_top_module_and_its_sub_modules_are_renamed() {
        let v = "module top(clock);\n    top$arb arb(.clock(clock));\n    reg topx;\n    wire [3:0] w = 4'h0;\nendmodule // top\nmodule top$arb(clock);\nendmodule\n";
        let r = rename_top(v, "offcard_dma");
        assert_eq!(top_module(&r), Some("offcard_dma"));
        assert!(r.contains("offcard_dma$arb arb(.clock(clock));") && r.contains("module offcard_dma$arb(clock);"), "{r}");
        assert!(r.contains("reg topx;") && r.contains("4'h0"), "only the module names change: {r}");
        assert!(!r.contains("module top"), "{r}");
    }

    #[test]
    fn bundle_members_are_variables_and_joins_stay() {
        // rust-hdl names a bundle's member `bundle$member` and writes a
        // `join` as a one-line `always @(*)`, which is single already.
        let v = "module m(rx$data,ep$data);\n    input wire  [3:0] rx$data;\n    output reg  [3:0] ep$data;\n    reg  [3:0] a$b;\n    always @(*) begin\n        ep$data = 4'h0;\n        ep$data = rx$data;\n    end\n    always @(*) a$b = ep$data;\nendmodule\n";
        let s = single_assignment(v);
        assert!(s.contains("reg [3:0] ep$data__sa;") && s.contains("ep$data__sa = rx$data;"), "{s}");
        assert_eq!(s.matches("        ep$data = ep$data__sa;").count(), 1, "{s}");
        assert!(s.contains("    always @(*) a$b = ep$data;\n"), "{s}");
    }

    #[test]
    fn literals_are_not_identifiers() {
        let mut set = std::collections::HashSet::new();
        identifiers("q = 1'h0 | 32'hff & h1;", &mut set);
        assert!(set.contains("q") && set.contains("h1") && !set.contains("h0") && !set.contains("hff"), "{set:?}");
    }

    #[test]
    fn comparisons_and_ports_are_not_assignments() {
        assert_eq!(assigned_name("        x = y;"), Some("x".into()));
        assert_eq!(assigned_name("        if (x == y) begin"), None);
        assert_eq!(assigned_name("        a$b = 1;"), Some("a$b".into()));
        assert_eq!(reg_declaration("reg[36:0] mem[63:0];"), None);
        assert_eq!(memory_declaration("reg[36:0] mem[63:0];"), Some(("mem".into(), 63, 0)));
        assert_eq!(memory_declaration("reg [7:0] x;"), None);
        let v = single_assignment("module r(clock);\n    reg[7:0] mem[3:0];\nendmodule\n");
        assert!(v.contains("for (mem__init = 0; mem__init <= 3; mem__init = mem__init + 1) mem[mem__init] = 0;"), "{v}");
        assert_eq!(reg_declaration("output reg  [2:0] read_data;"), Some(("read_data".into(), "[2:0] ".into())));
    }
}

/// The ports of module `module` in `verilog`: (direction, width declaration
/// such as `[63:0] ` or empty, name), from its `input`/`output` lines.
pub fn module_ports(verilog: &str, module: &str) -> Vec<(String, String, String)> {
    let head = format!("module {module}(");
    let Some(start) = verilog.find(&head) else { return vec![] };
    let mut ports = vec![];
    for line in verilog[start..].lines().skip(1) {
        let l = line.trim();
        if l.starts_with("endmodule") || l.starts_with("// Stub signals") {
            break;
        }
        let Some(dir) = ["input", "output"].into_iter().find(|d| l.starts_with(d)) else { continue };
        let decl = l.trim_end_matches(';');
        let name = decl.rsplit(' ').next().unwrap_or("").to_string();
        let width = decl.find('[').map(|i| format!("{} ", &decl[i..decl.find(']').unwrap() + 1])).unwrap_or_default();
        ports.push((dir.to_string(), width, name));
    }
    ports
}

/// The simulation top of the Verilated card models, generated from the
/// card's ports: the card's ports plus `reset_load` and `reset_state`, and
/// the card's reset taken from a flop.
///
/// Why: rust-hdl writes each block's synchronous reset inside its
/// combinational `always @(*)`, so with reset a top-level input most of the
/// card's combinational logic depends on an input and Verilator evaluates it
/// on every `eval` as well as after each clock edge. Held in `reset_q`, reset
/// is state: that logic runs once a cycle. Same behaviour cycle for cycle:
/// the C ABI (sim/csrc/card_abi.cpp) presents each cycle's reset on `reset`,
/// `reset_q` takes it at every clock edge, and when a cycle's reset differs
/// from `reset_state` the ABI pulses `reset_load` first. No card logic is
/// here: only the flop and the instance.
pub fn card_sim_top(card_verilog: &str) -> String {
    let ports = module_ports(card_verilog, crate::TOP_MODULE);
    let mut v = String::from("// Generated by offcard_hdl::verilog_post::card_sim_top (simulation only).\n");
    let names: Vec<&str> = ports.iter().map(|p| p.2.as_str()).collect();
    v.push_str(&format!("module offcard_sim_top({}, reset_load, reset_state);\n", names.join(", ")));
    for (dir, width, name) in &ports {
        v.push_str(&format!("    {dir} wire {width}{name};\n"));
    }
    v.push_str("    input wire reset_load;\n    output wire reset_state;\n");
    v.push_str("    reg reset_q = 1'b0;\n    always @(posedge clock or posedge reset_load) reset_q <= reset;\n");
    v.push_str("    assign reset_state = reset_q;\n");
    let conns: Vec<String> = names
        .iter()
        .map(|n| if *n == "reset" { ".reset(reset_q)".to_string() } else { format!(".{n}({n})") })
        .collect();
    v.push_str(&format!("    {} card({});\nendmodule\n", crate::TOP_MODULE, conns.join(", ")));
    v
}
