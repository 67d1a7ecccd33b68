//! Reading the page's own JSON objects (saved state, messages between tabs, `config.json`) with less code than
//! serde's derive. The derive reads a struct from an object and also from an array, and its keys as text, as
//! bytes and as numbers; in the wasm that is several readers per struct, of which the page only ever needs the
//! first. [`json_object!`] implements `Deserialize` with that one: the same keys, required fields missing are
//! errors, optional ones take their default, a key given twice is an error, unknown keys are skipped (as the
//! derive does without `deny_unknown_fields`). Serialising stays derived.

/// Implements `Deserialize` for a struct read from a JSON object: `required { field: Type, … }` must be there,
/// `optional { field: Type, … }` default when absent (`#[serde(default)]`, or an `Option` field). Keys are the
/// field names.
macro_rules! json_object {
    ($ty:ident, $what:literal, required { $($req:ident: $rt:ty),* $(,)? } optional { $($opt:ident: $ot:ty),* $(,)? }) => {
        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<$ty, D::Error> {
                struct Keys;
                impl<'de> serde::de::Visitor<'de> for Keys {
                    type Value = $ty;

                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str($what)
                    }

                    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<$ty, A::Error> {
                        $(let mut $req: Option<$rt> = None;)*
                        $(let mut $opt: Option<$ot> = None;)*
                        while let Some(key) = map.next_key::<String>()? {
                            match key.as_str() {
                                $(stringify!($req) => $crate::json_object::set(&mut $req, &mut map, stringify!($req))?,)*
                                $(stringify!($opt) => $crate::json_object::set(&mut $opt, &mut map, stringify!($opt))?,)*
                                _ => {
                                    map.next_value::<serde::de::IgnoredAny>()?;
                                }
                            }
                        }
                        Ok($ty {
                            $($req: $req.ok_or_else(|| <A::Error as serde::de::Error>::missing_field(stringify!($req)))?,)*
                            $($opt: $opt.unwrap_or_default(),)*
                        })
                    }
                }
                d.deserialize_map(Keys)
            }
        }
    };
}

pub(crate) use json_object;

/// Reads the value of the key `name` into its slot; a key given twice is an error, as the derive makes it.
pub(crate) fn set<'de, T: serde::Deserialize<'de>, A: serde::de::MapAccess<'de>>(
    slot: &mut Option<T>,
    map: &mut A,
    name: &'static str,
) -> Result<(), A::Error> {
    if slot.is_some() {
        return Err(<A::Error as serde::de::Error>::duplicate_field(name));
    }
    *slot = Some(map.next_value()?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use wasm_bindgen_test::wasm_bindgen_test;

    #[derive(Debug, PartialEq)]
    struct Example {
        name: String,
        count: u32,
        note: Option<String>,
        tags: Vec<String>,
    }

    json_object!(Example, "an example", required { name: String, count: u32 } optional { note: Option<String>, tags: Vec<String> });

    #[wasm_bindgen_test(unsupported = test)]
    fn reads_like_the_derive_for_objects() {
        let read = |text: &str| serde_json::from_str::<Example>(text).ok();
        let example = Example { name: "a".into(), count: 2, note: None, tags: vec![] };
        assert_eq!(read(r#"{"name":"a","count":2}"#), Some(example));
        assert_eq!(
            read(r#"{"tags":["x"],"extra":{"skipped":[1]},"note":"n","count":2,"name":"a"}"#),
            Some(Example { name: "a".into(), count: 2, note: Some("n".into()), tags: vec!["x".into()] })
        );
        assert_eq!(read(r#"{"name":"a","count":2,"note":null}"#).map(|e| e.note), Some(None));
        for bad in [
            r#"{"name":"a"}"#,
            r#"{"name":"a","count":2,"count":3}"#,
            r#"{"name":"a","count":2,"tags":null}"#,
            r#"{"name":"a","count":-1}"#,
            r#"["a",2,null,[]]"#,
            "null",
        ] {
            assert_eq!(read(bad), None, "{bad}");
        }
    }
}
