//! Genesys Cloud regions: a region's name to its login and API base URLs.

/// Where to log in and where to call the API, as base URLs without a trailing slash.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
pub struct Endpoints {
    /// The login host, e.g. `https://login.mypurecloud.ie`.
    pub login: String,
    /// The API host, e.g. `https://api.mypurecloud.ie`.
    pub api: String,
}

/// A region name that is not in the table.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown Genesys Cloud region {name:?}; known: {known}")]
pub struct UnknownRegion {
    /// The name given.
    pub name: String,
    /// The known AWS region names, comma-separated.
    pub known: String,
}

/// (AWS region, Genesys domain, the city people call it by), as Genesys' SDKs list them
/// (platform-client-sdk-python `PureCloudRegionHosts`); `us-east-2` is the FedRAMP region and
/// `eusc-de-east-1` the EU sovereign cloud.
pub const REGIONS: &[(&str, &str, &str)] = &[
    ("us-east-1", "mypurecloud.com", "virginia"),
    ("us-west-2", "usw2.pure.cloud", "oregon"),
    ("ca-central-1", "cac1.pure.cloud", "canada"),
    ("sa-east-1", "sae1.pure.cloud", "sao-paulo"),
    ("eu-west-1", "mypurecloud.ie", "dublin"),
    ("eu-west-2", "euw2.pure.cloud", "london"),
    ("eu-central-1", "mypurecloud.de", "frankfurt"),
    ("eu-central-2", "euc2.pure.cloud", "zurich"),
    ("me-central-1", "mec1.pure.cloud", "uae"),
    ("ap-south-1", "aps1.pure.cloud", "mumbai"),
    ("ap-northeast-1", "mypurecloud.jp", "tokyo"),
    ("ap-northeast-2", "apne2.pure.cloud", "seoul"),
    ("ap-northeast-3", "apne3.pure.cloud", "osaka"),
    ("ap-southeast-2", "mypurecloud.com.au", "sydney"),
    ("mx-central-1", "mxc1.pure.cloud", "mexico"),
    ("ap-southeast-1", "apse1.pure.cloud", "singapore"),
    ("us-east-2", "use2.us-gov-pure.cloud", "fedramp"),
    ("eusc-de-east-1", "edee1.eusc-pure.cloud", "eu-sovereign"),
];

impl Endpoints {
    /// The endpoints of a region named by its AWS name (`eu-west-2`), its Genesys domain
    /// (`euw2.pure.cloud`) or its city (`london`), in any case.
    pub fn for_region(name: &str) -> Result<Self, UnknownRegion> {
        let wanted = name.trim().to_ascii_lowercase();
        REGIONS
            .iter()
            .find(|(aws, domain, city)| [aws, domain, city].contains(&&wanted.as_str()))
            .map(|(_, domain, _)| Self {
                login: format!("https://login.{domain}"),
                api: format!("https://api.{domain}"),
            })
            .ok_or_else(|| UnknownRegion {
                name: name.to_owned(),
                known: REGIONS
                    .iter()
                    .map(|(aws, _, _)| *aws)
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }

    /// Explicit base URLs (a proxy, or the test double for both).
    pub fn explicit(login: impl Into<String>, api: impl Into<String>) -> Self {
        Self {
            login: login.into().trim_end_matches('/').to_owned(),
            api: api.into().trim_end_matches('/').to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_region_is_found_by_aws_name_domain_or_city() {
        let london = Endpoints::for_region("eu-west-2");
        assert_eq!(
            london,
            Ok(Endpoints {
                login: "https://login.euw2.pure.cloud".into(),
                api: "https://api.euw2.pure.cloud".into(),
            })
        );
        assert_eq!(Endpoints::for_region("euw2.pure.cloud"), london);
        assert_eq!(Endpoints::for_region(" London "), london);
        let dublin = Endpoints::for_region("mypurecloud.ie").map(|e| e.api);
        assert_eq!(dublin.as_deref(), Ok("https://api.mypurecloud.ie"));
    }

    #[test]
    fn an_unknown_region_lists_the_known_ones() {
        let err = Endpoints::for_region("mars-1").err().map(|e| e.to_string());
        assert!(err.is_some_and(|m| m.contains("\"mars-1\"") && m.contains("eu-west-2")));
    }

    #[test]
    fn explicit_endpoints_drop_a_trailing_slash() {
        let e = Endpoints::explicit("http://127.0.0.1:9/", "http://127.0.0.1:9");
        assert_eq!(e.login, "http://127.0.0.1:9");
    }
}
