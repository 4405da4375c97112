"""What an analyst looks at: report pages with highlighted facts, and a corpus summary with plots."""
