//! Names in the PostgreSQL model: objects in `public` are bare (`orders`),
//! others are qualified by their schema (`billing.invoices`).

use crate::sql::quote_ident;

/// Quotes a model name as an SQL identifier: `billing.invoices` becomes
/// `"billing"."invoices"`, `orders` becomes `"orders"`.
pub(super) fn quote_name(name: &str) -> String {
    match name.split_once('.') {
        Some((schema, object)) => format!("{}.{}", quote_ident(schema), quote_ident(object)),
        None => quote_ident(name),
    }
}

#[cfg(test)]
mod tests {
    use super::quote_name;

    #[test]
    fn qualified_names_quote_each_part() {
        assert_eq!(quote_name("orders"), "\"orders\"");
        assert_eq!(quote_name("billing.in\"v"), "\"billing\".\"in\"\"v\"");
    }
}
