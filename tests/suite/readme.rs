//! The README's fact table is the schema's: a new fact cannot ship undocumented.

#[test]
fn readme_fact_table_matches_the_schema() {
    let readme = include_str!("../../README.md");
    let begin = "<!-- facts:begin -->\n";
    let start = readme.find(begin).map(|i| i + begin.len());
    let end = readme.find("<!-- facts:end -->");
    let (Some(start), Some(end)) = (start, end) else {
        panic!("README.md lost its facts:begin / facts:end markers");
    };
    assert_eq!(
        &readme[start..end],
        publish_guard::language::schema::markdown_table(),
        "README.md's fact table differs from src/schema.rs: paste `publish-guard facts` between the markers"
    );
}
