//! The audit hash is taken over RFC 8785 canonical JSON: check the canonicaliser against the
//! RFC's published examples (copied into `tests/fixtures/rfc8785`).

use publish_guard::audit::canonical::canonical_json;
use serde_json::Value;

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!("tests/fixtures/rfc8785/{name}")).unwrap()
}

fn canonical_of(input: &str) -> String {
    let value: Value = serde_json::from_str(input).unwrap();
    canonical_json(&value).unwrap()
}

#[test]
fn values_example_of_section_3_2_2() {
    assert_eq!(
        canonical_of(&fixture("values.input.json")),
        fixture("values.expected.json")
    );
}

#[test]
fn property_sorting_example_of_section_3_2_3() {
    assert_eq!(
        canonical_of(&fixture("sorting.input.json")),
        fixture("sorting.expected.json")
    );
}

#[test]
fn number_serialisation_table_of_appendix_b() {
    let table = fixture("numbers.tsv");
    let rows: Vec<(&str, &str)> = table
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.split_once('\t'))
        .collect();
    assert_eq!(rows.len(), 24);
    for (bits, expected) in rows {
        let number = f64::from_bits(u64::from_str_radix(bits, 16).unwrap());
        assert_eq!(canonical_json(&number).unwrap(), expected, "bits {bits}");
    }
}
