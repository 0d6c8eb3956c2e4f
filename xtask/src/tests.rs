//! The learner's commands on a fixture workspace, end to end: real cargo
//! builds, real graded runs, real compiler errors. Four steps: one solved,
//! one half done, one untouched, one that does not compile.

use crate::status::{self, Mode};
use crate::style::Style;
use crate::testing::Fixture;
use crate::{grade, hint, lessons, progress, solution};

/// The learner's work on the fixture.
fn play_the_learner(fx: &Fixture) {
    // 01: solved.
    let lib = fx.read("lessons/01-add/src/lib.rs");
    fx.write(
        "lessons/01-add/src/lib.rs",
        &lib.replace(r#"todo!("lesson-01: return the sum of a and b");"#, "a + b"),
    );
    // 02: `double` written, `negate` wrong.
    let lib = fx.read("lessons/02-pair/src/lib.rs");
    let lib = lib.replace(r#"todo!("lesson-02: return twice a");"#, "a * 2");
    fx.write(
        "lessons/02-pair/src/lib.rs",
        &lib.replace(r#"todo!("lesson-02: return minus a");"#, "a"),
    );
    // 03: untouched. 04: a typo.
    let lib = fx.read("lessons/04-square/src/lib.rs");
    fx.write(
        "lessons/04-square/src/lib.rs",
        &lib.replace(r#"todo!("lesson-04: return a times a");"#, "a * b"),
    );
}

/// Compiler output differs a little between Rust versions: keep what the
/// learner must see first (the error, and where), drop the rendering of
/// the code and the suggestions.
fn stable(text: &str) -> String {
    let marker = "The compiler's first error:\n";
    let Some(at) = text.find(marker) else {
        return text.to_string();
    };
    let (head, error) = text.split_at(at + marker.len());
    let error = error
        .lines()
        .filter(|l| {
            let t = l.trim_start();
            !(t.starts_with(|c: char| c.is_ascii_digit() || c == '|' || c == '=')
                || t.starts_with("help:")
                || t.starts_with("..."))
        })
        .collect::<Vec<_>>()
        .join("\n");
    format!("{head}{error}")
}

fn statuses(fx: &Fixture, mode: Mode) -> (Vec<status::Status>, Vec<String>) {
    let mut graded = Vec::new();
    let statuses = status::all(fx.root(), mode, &mut |step| graded.push(step.id.clone())).unwrap();
    (statuses, graded)
}

#[test]
fn the_learners_commands_on_a_fixture_workspace() {
    let fx = Fixture::new();

    // A fresh clone: every step untouched, nothing graded, nothing run but
    // the references' catalogs.
    let (fresh, graded) = statuses(&fx, Mode::Regrade);
    assert!(graded.is_empty(), "graded {graded:?}");
    insta::assert_snapshot!(
        "progress_fresh_clone",
        progress::render(&fresh, Style::plain())
    );

    play_the_learner(&fx);
    let (now, graded) = statuses(&fx, Mode::Regrade);
    assert_eq!(
        graded,
        ["01-add", "02-pair", "04-square"],
        "only changed steps are graded"
    );
    let screen = progress::render(&now, Style::plain());
    assert!(
        screen.contains("error[E0425]: cannot find value `b` in this scope"),
        "{screen}"
    );
    assert!(
        screen.contains("--> lessons/04-square/src/lib.rs:"),
        "{screen}"
    );
    assert!(!screen.contains("aborting due to"), "{screen}");
    assert!(!screen.contains("could not compile"), "{screen}");
    insta::assert_snapshot!("progress_four_states", stable(&screen));

    // Nothing changed: nothing is graded again.
    let (_, graded) = statuses(&fx, Mode::Regrade);
    assert!(graded.is_empty(), "graded again: {graded:?}");

    // A save makes only that step stale.
    let lib = fx.read("lessons/02-pair/src/lib.rs");
    fx.write(
        "lessons/02-pair/src/lib.rs",
        &lib.replacen("    a\n", "    -a\n", 1),
    );
    let (cached, graded) = statuses(&fx, Mode::Cached);
    assert!(graded.is_empty());
    assert!(
        matches!(cached[1].state, status::State::Changed(Some(_))),
        "{:?}",
        cached[1].state
    );
    let (now, graded) = statuses(&fx, Mode::Regrade);
    assert_eq!(graded, ["02-pair"]);
    assert!(now[1].done(), "{:?}", now[1].state);
    fx.write("lessons/02-pair/src/lib.rs", &lib);
    let (now, _) = statuses(&fx, Mode::Regrade);

    // What `watch` shows after a save: the score card, or the compiler.
    let graded = crate::cargo::grade(fx.root(), "lesson-02", false).unwrap();
    insta::assert_snapshot!(
        "watch_half_done",
        crate::watch::result(&fx.step("02"), &graded)
    );
    let graded = crate::cargo::grade(fx.root(), "lesson-04", false).unwrap();
    let shown = crate::watch::result(&fx.step("04"), &graded);
    assert!(shown.contains("error[E0425]"), "{shown}");
    insta::assert_snapshot!("watch_broken", stable(&shown));

    // Hints: the first failing check, then one named; a wrong name says
    // which names there are.
    let half = &now[1];
    insta::assert_snapshot!(
        "hint_first",
        hint::render(half, None, hint::Level::Concept, Style::plain()).unwrap()
    );
    insta::assert_snapshot!(
        "hint_named",
        hint::render(
            half,
            Some("negates_zero"),
            hint::Level::Concept,
            Style::plain()
        )
        .unwrap()
    );
    let wrong = hint::render(half, Some("nope"), hint::Level::Concept, Style::plain()).unwrap_err();
    assert!(
        format!("{wrong:#}").contains("doubles, negates, negates_zero"),
        "{wrong:#}"
    );
    let solved = hint::render(&now[0], None, hint::Level::Concept, Style::plain()).unwrap();
    assert!(
        solved.contains("every check of step 01-add passes"),
        "{solved}"
    );
    let broken = hint::render(&now[3], None, hint::Level::Concept, Style::plain()).unwrap();
    assert!(broken.contains("error[E0425]"), "{broken}");
    // An untouched step is graded for its hint: the first todo!() to write.
    let untouched =
        status::of(fx.root(), fx.step("03"), Mode::RegradeStarters, &mut |_| {}).unwrap();
    let text = hint::render(&untouched, None, hint::Level::Concept, Style::plain()).unwrap();
    assert!(
        text.contains("not written yet: lesson-03: say hello to {name}"),
        "{text}"
    );

    // The reference, only for a step that passes.
    assert!(now[0].done() && !now[1].done());
    let shown = solution::render(
        "02-pair",
        &lessons::regions(fx.root(), &fx.step("02")).unwrap(),
        Style::plain(),
    );
    insta::assert_snapshot!("solution", shown);

    // `grade --json`, against its schema.
    let reports: Vec<_> = now
        .iter()
        .filter_map(|s| match &s.state {
            status::State::Graded(r) => Some(r.clone()),
            _ => None,
        })
        .collect();
    let json: serde_json::Value = serde_json::from_str(&grade::json(&reports).unwrap()).unwrap();
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../classroom/grade.schema.json"),
        )
        .unwrap(),
    )
    .unwrap();
    crate::schema::validate(&schema, &json).unwrap();
    insta::assert_json_snapshot!("classroom", grade::classroom(&reports));

    // The command itself, headless, with a step that does not compile.
    let file = |name: &str| fx.root().join(name);
    let options = grade::Options {
        step: None,
        json: Some(file("grades.json")),
        junit: Some(file("grades.xml")),
        classroom: Some(file("classroom.json")),
    };
    grade::grade(fx.root(), &options).unwrap();
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(file("grades.json")).unwrap()).unwrap();
    crate::schema::validate(&schema, &json).unwrap();
    assert_eq!(
        (&json["score"], &json["total"]),
        (&serde_json::json!(5), &serde_json::json!(18))
    );
    let all: Vec<grader::report::Report> = serde_json::from_value(json["steps"].clone()).unwrap();
    insta::assert_snapshot!("grade_summary", grade::summary(&all));
    let broken = &json["steps"][3];
    assert_eq!(broken["score"], 0);
    assert_eq!(broken["total"], 5, "the total comes from the reference");
    let error = broken["error"].as_str().unwrap();
    assert!(
        error.starts_with("does not compile:\nerror[E0425]"),
        "{error}"
    );
    let junit = std::fs::read_to_string(file("grades.xml")).unwrap();
    assert!(
        junit.contains("<testcase classname=\"lesson-02\" name=\"negates\">"),
        "{junit}"
    );
    let classroom: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(file("classroom.json")).unwrap()).unwrap();
    assert_eq!(classroom["status"], "error");
    assert_eq!(classroom["max_score"], 18);
    let scored: u64 = classroom["tests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["score"].as_u64().unwrap())
        .sum();
    assert_eq!(scored, 5);
}
