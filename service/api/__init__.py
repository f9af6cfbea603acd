"""HTTP routes only: parsing and answering; the work happens in protocol/, tasks/ and repository/."""
