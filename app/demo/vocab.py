"""People and places for the synthetic population: names as diverse as an English list, real-looking
streets and towns, and postcodes of valid format. All fictional; no record describes a real person."""

from __future__ import annotations

FAMILY_NAMES: tuple[str, ...] = (
    "Smith", "Jones", "Williams", "Taylor", "Brown", "Davies", "Evans", "Wilson", "Thomas", "Johnson",
    "Roberts", "Robinson", "Thompson", "Wright", "Walker", "White", "Edwards", "Hughes", "Green", "Hall",
    "Lewis", "Harris", "Clarke", "Patel", "Jackson", "Wood", "Turner", "Martin", "Cooper", "Hill",
    "Ward", "Morris", "Moore", "Clark", "Lee", "King", "Baker", "Harrison", "Morgan", "Allen",
    "James", "Scott", "Phillips", "Watson", "Davis", "Parker", "Price", "Bennett", "Young", "Griffiths",
    "Mitchell", "Kelly", "Cook", "Carter", "Richardson", "Bailey", "Collins", "Bell", "Shaw", "Murphy",
    "Miller", "Cox", "Richards", "Khan", "Marshall", "Anderson", "Simpson", "Ellis", "Adams", "Singh",
    "Begum", "Wilkinson", "Foster", "Chapman", "Powell", "Webb", "Rogers", "Gray", "Mason", "Ali",
    "Hunt", "Hussain", "Campbell", "Matthews", "Owen", "Palmer", "Holmes", "Mills", "Barnes", "Knight",
    "Lloyd", "Butler", "Russell", "Barker", "Fisher", "Stevens", "Jenkins", "Murray", "Dixon", "Harvey",
    "Graham", "Pearson", "Ahmed", "Fletcher", "Walsh", "Kaur", "Gibson", "Howard", "Andrews", "Stewart",
    "Elliott", "Reynolds", "Saunders", "Payne", "Fox", "Ford", "Pearce", "Day", "Brooks", "West",
    "O'Brien", "O'Connor", "McCarthy", "McDonald", "Byrne", "Doyle", "Rahman", "Chowdhury", "Miah", "Islam",
    "Mahmood", "Iqbal", "Akhtar", "Shah", "Sharma", "Gupta", "Nguyen", "Chen", "Wong", "Li",
    "Zhang", "Okafor", "Adeyemi", "Mensah", "Osei", "Okonkwo", "Kowalski", "Nowak", "Wiśniewska", "Santos",
    "Silva", "Costa", "Popescu", "Yilmaz", "Smith-Jones", "Ap Rhys", "Le Roux", "Da Silva", "Ó Súilleabháin",
    "Müller",
)

FEMALE_NAMES: tuple[str, ...] = (
    "Olivia", "Amelia", "Isla", "Ava", "Mia", "Ivy", "Lily", "Isabella", "Rosie", "Sophia",
    "Grace", "Freya", "Willow", "Florence", "Emily", "Ella", "Poppy", "Evie", "Elsie", "Charlotte",
    "Evelyn", "Sienna", "Sofia", "Daisy", "Phoebe", "Sophie", "Alice", "Harper", "Matilda", "Ruby",
    "Maya", "Millie", "Eva", "Jessica", "Scarlett", "Chloe", "Hannah", "Zara", "Aisha", "Fatima",
    "Maryam", "Amira", "Hafsa", "Priya", "Anjali", "Simran", "Mei", "Zoë", "Niamh", "Siobhan",
    "Aoife", "Ffion", "Cerys", "Seren", "Eilidh", "Margaret", "Patricia", "Susan", "Linda", "Elizabeth",
    "Mary", "Jean", "Sandra", "Karen", "Helen", "Julie", "Sarah", "Claire", "Nicola", "Joanne",
    "Rachel", "Rebecca", "Laura", "Gemma", "Louise", "Emma", "Victoria", "Jennifer", "Amanda", "Deborah",
    "Angela", "Alison", "Pauline", "Dorothy", "Joan", "Barbara", "Maureen", "Irene", "Sheila", "Brenda",
    "Valerie", "Janet", "Christine", "Carol", "Wendy", "Yvonne", "Agnieszka", "Katarzyna", "Chiamaka", "Ngozi",
    "Abena", "Nadia", "Samira", "Yasmin", "Leah", "Megan", "Bethany", "Lauren", "Amy", "Jade",
)

MALE_NAMES: tuple[str, ...] = (
    "Oliver", "George", "Noah", "Arthur", "Muhammad", "Leo", "Oscar", "Harry", "Archie", "Jack",
    "Henry", "Charlie", "Freddie", "Theodore", "Thomas", "Finley", "Theo", "Alfie", "Jacob", "William",
    "Isaac", "Joshua", "James", "Lucas", "Alexander", "Arlo", "Edward", "Max", "Mohammed", "Ibrahim",
    "Yusuf", "Omar", "Ali", "Hamza", "Zain", "Arjun", "Rohan", "Ravi", "Sanjay", "Vikram",
    "Amit", "Gurpreet", "Wei", "Jun", "Kwame", "Kofi", "Chinedu", "Tunde", "Emeka", "Piotr",
    "Tomasz", "Jakub", "Seán", "Ciarán", "Dylan", "Rhys", "Owen", "Gareth", "Dafydd", "Callum",
    "Angus", "Euan", "John", "David", "Michael", "Paul", "Peter", "Richard", "Robert", "Stephen",
    "Mark", "Andrew", "Christopher", "Daniel", "Matthew", "Anthony", "Kevin", "Gary", "Ian", "Neil",
    "Simon", "Stuart", "Martin", "Graham", "Keith", "Colin", "Brian", "Kenneth", "Derek", "Ronald",
    "Dennis", "Raymond", "Trevor", "Barry", "Geoffrey", "Alan", "Philip", "Nigel", "Craig", "Darren",
    "Jason", "Ryan", "Liam", "Connor", "Kieran", "Nathan", "Luke", "Adam", "Ethan", "Reuben",
)

STREETS: tuple[str, ...] = (
    "High Street", "Station Road", "Church Street", "Main Street", "Park Road", "Victoria Road",
    "Green Lane", "Manor Road", "Church Lane", "Park Avenue", "The Avenue", "The Crescent", "Queens Road",
    "New Road", "Grange Road", "Kings Road", "Alexandra Road", "Albert Road", "Mill Lane", "School Lane",
    "North Street", "South Street", "West Street", "York Road", "London Road", "Chapel Street",
    "Springfield Road", "George Street", "Broadway", "Windsor Road", "Highfield Road", "Stanley Road",
    "Richmond Road", "Market Street", "Bridge Street", "Water Lane", "Orchard Close", "Meadow Way",
    "Beech Grove", "Oak Avenue", "Elm Grove", "Cedar Close", "Willow Drive", "Sycamore Close", "Rowan Way",
    "Holly Road", "Hawthorn Avenue", "Ash Grove", "Birch Road", "Chestnut Close", "Castle Street",
    "Priory Road", "Abbey Road", "Nelson Street", "Wellington Road", "Cromwell Road", "Cavendish Road",
    "Mount Pleasant", "Woodland Road", "Fairfield Road", "Brook Street", "Canal Street", "Moor Lane",
    "Quarry Lane", "Back Lane", "Westfield Road", "Thornhill Road", "Beck Side", "Vicarage Lane",
)

BUILDINGS: tuple[str, ...] = (
    "Albion House", "Victoria Court", "Mill Court", "Canal Wharf", "Priory Mews", "St John's Court",
    "Kingsway House", "Riverside Apartments", "The Maltings", "Old School House",
)

#: the demo locality (a West Yorkshire-like patch): town -> (postcode area, districts)
TOWNS: tuple[tuple[str, str, tuple[int, ...]], ...] = (
    ("Leeds", "LS", tuple(range(1, 18))),
    ("Bradford", "BD", tuple(range(1, 16))),
    ("Wakefield", "WF", (1, 2, 3, 4)),
    ("Huddersfield", "HD", (1, 2, 3, 4, 5)),
    ("Halifax", "HX", (1, 2, 3, 4, 5)),
    ("Dewsbury", "WF", (12, 13)),
    ("Keighley", "BD", (20, 21, 22)),
    ("Pontefract", "WF", (8, 9)),
    ("Castleford", "WF", (10,)),
    ("Otley", "LS", (21,)),
    ("Ilkley", "LS", (29,)),
    ("Pudsey", "LS", (28,)),
    ("Morley", "LS", (27,)),
    ("Batley", "WF", (17,)),
    ("Brighouse", "HD", (6,)),
    ("Harrogate", "HG", (1, 2, 3)),
    ("York", "YO", (10, 23, 24, 26, 30, 31, 32)),
    ("Barnsley", "S", (70, 71, 72, 73, 74, 75)),
    ("Doncaster", "DN", (1, 2, 3, 4, 5, 6)),
    ("Selby", "YO", (8,)),
)

#: letters used in the inward part of UK postcodes (C, I, K, M, O and V never appear there)
POSTCODE_UNIT_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"

PRACTICE_PLACE_NAMES: tuple[str, ...] = (
    "Ashfield", "Beechwood", "Brookside", "Cedar House", "Elmstead", "Fernlea", "Glenside", "Hawthorn",
    "Kingsway", "Larchfield", "Meadowside", "Northgate", "Parkview", "Queensway", "Rosehill", "Stonebridge",
    "Thornbury", "Valley Road", "Westgate", "Willowbank", "Yewtree", "Abbeydale", "Bramley", "Chapel Allerton",
    "Denby Dale", "Eastwood", "Fairweather", "Greenmoor", "Holme Valley", "Ivy Bank",
)
PRACTICE_SUFFIXES: tuple[str, ...] = (
    "Surgery", "Medical Centre", "Health Centre", "Medical Practice", "Family Practice", "Group Practice",
)
