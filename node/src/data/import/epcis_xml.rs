//! Placeholder while the streaming EPCIS XML reader is written (replaced in this change).
#![allow(missing_docs)]
use std::io::BufRead;
pub struct XmlDocumentInfo { pub namespaces: Vec<(String, String)> }
pub enum XmlItem { Event { value: serde_json::Value, line: u64, index: usize }, MasterData { value: serde_json::Value, line: u64 } }
#[derive(Debug)]
pub struct XmlError { pub line: u64, pub column: Option<u64>, pub message: String }
pub struct EpcisXmlReader<R: BufRead> { _r: R, info: XmlDocumentInfo }
impl<R: BufRead> EpcisXmlReader<R> {
    pub fn new(r: R) -> Self { EpcisXmlReader { _r: r, info: XmlDocumentInfo { namespaces: Vec::new() } } }
    pub fn document(&self) -> &XmlDocumentInfo { &self.info }
    pub fn next_item(&mut self) -> Result<Option<XmlItem>, XmlError> {
        Err(XmlError { line: 1, column: None, message: "EPCIS XML import is not available in this build".into() })
    }
}
