"""Coded clinical content for the demo records: SNOMED CT problems, allergens and vaccines, dm+d-named
medicines with dosage text, LOINC observations and encounter types. Codes are real; people are not."""

from __future__ import annotations

from dataclasses import dataclass

SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"


@dataclass(frozen=True)
class ConditionDef:
    code: str
    display: str
    min_age: int
    chance: float  # share of eligible patients who have it (before the age factor)
    chronic: bool = True
    age_related: bool = False  # more common with age
    max_age: int = 120
    sex: str | None = None  # only this sex, when set
    female_factor: float = 1.0
    meds: tuple[str, ...] = ()  # MEDICATIONS keys; chronic: 1-2 of them, acute: one
    monitoring: tuple[str, ...] = ()  # observation kinds reviewed for this problem


CONDITIONS: tuple[ConditionDef, ...] = (
    ConditionDef("38341003", "Hypertensive disorder, systemic arterial", 30, 0.22, age_related=True,
                 meds=("amlodipine", "ramipril", "losartan", "indapamide"), monitoring=("bp",)),
    ConditionDef("44054006", "Diabetes mellitus type 2", 30, 0.09, age_related=True,
                 meds=("metformin", "gliclazide", "sitagliptin", "empagliflozin"),
                 monitoring=("hba1c", "bp", "cholesterol")),
    ConditionDef("55822004", "Hyperlipidemia", 35, 0.12, age_related=True,
                 meds=("atorvastatin20", "simvastatin"), monitoring=("cholesterol",)),
    ConditionDef("49436004", "Atrial fibrillation", 55, 0.06, age_related=True,
                 meds=("apixaban", "bisoprolol"), monitoring=("bp",)),
    ConditionDef("53741008", "Coronary arteriosclerosis", 45, 0.05, age_related=True,
                 meds=("aspirin", "atorvastatin80", "gtn"), monitoring=("bp", "cholesterol")),
    ConditionDef("84114007", "Heart failure", 55, 0.03, age_related=True,
                 meds=("bisoprolol", "ramipril", "furosemide"), monitoring=("bp", "egfr")),
    ConditionDef("13645005", "Chronic obstructive lung disease", 40, 0.05, age_related=True,
                 meds=("tiotropium", "salbutamol")),
    ConditionDef("709044004", "Chronic kidney disease", 50, 0.06, age_related=True, monitoring=("egfr", "bp")),
    ConditionDef("40930008", "Hypothyroidism", 20, 0.03, female_factor=3.0, meds=("levothyroxine",)),
    ConditionDef("396275006", "Osteoarthritis", 45, 0.12, age_related=True,
                 meds=("paracetamol", "cocodamol", "naproxen")),
    ConditionDef("64859006", "Osteoporosis", 55, 0.05, age_related=True, female_factor=4.0,
                 meds=("alendronic", "adcal")),
    ConditionDef("230690007", "Cerebrovascular accident", 55, 0.02, age_related=True,
                 meds=("clopidogrel", "atorvastatin80"), monitoring=("bp",)),
    ConditionDef("52448006", "Dementia", 65, 0.04, age_related=True, meds=("donepezil",)),
    ConditionDef("90560007", "Gout", 35, 0.03, female_factor=0.3, meds=("allopurinol",)),
    ConditionDef("266569009", "Benign prostatic hyperplasia", 50, 0.08, age_related=True, sex="male",
                 meds=("tamsulosin",)),
    ConditionDef("414916001", "Obesity", 16, 0.10, monitoring=("weight",)),
    ConditionDef("69896004", "Rheumatoid arthritis", 25, 0.01, female_factor=2.5,
                 meds=("methotrexate", "folic")),
    ConditionDef("254837009", "Malignant neoplasm of breast", 40, 0.02, age_related=True, sex="female",
                 meds=("anastrozole",)),
    ConditionDef("195967001", "Asthma", 3, 0.09, meds=("salbutamol", "beclometasone")),
    ConditionDef("35489007", "Depressive disorder", 14, 0.10, female_factor=1.5,
                 meds=("sertraline", "citalopram")),
    ConditionDef("197480006", "Anxiety disorder", 12, 0.07, female_factor=1.5),
    ConditionDef("84757009", "Epilepsy", 1, 0.008, meds=("levetiracetam", "lamotrigine")),
    ConditionDef("37796009", "Migraine", 10, 0.06, female_factor=2.5, meds=("sumatriptan",)),
    ConditionDef("24079001", "Atopic dermatitis", 0, 0.08, meds=("emollient", "hydrocortisone")),
    ConditionDef("61582004", "Allergic rhinitis", 5, 0.10, meds=("cetirizine", "beclo_nasal")),
    ConditionDef("235595009", "Gastroesophageal reflux disease", 18, 0.08, meds=("omeprazole", "lansoprazole")),
    ConditionDef("10743008", "Irritable bowel syndrome", 16, 0.05, female_factor=2.0, meds=("mebeverine",)),
    ConditionDef("9014002", "Psoriasis", 10, 0.02, meds=("calcipotriol",)),
    ConditionDef("46635009", "Diabetes mellitus type 1", 1, 0.004, meds=("insulin",),
                 monitoring=("hba1c",)),
    ConditionDef("13746004", "Bipolar disorder", 18, 0.01, meds=("lithium",)),
    ConditionDef("271737000", "Anemia", 12, 0.03, female_factor=2.5, meds=("ferrous",)),
    # acute problems, recorded then resolved
    ConditionDef("65363002", "Otitis media", 0, 0.25, chronic=False, max_age=12, meds=("amoxicillin_susp",)),
    ConditionDef("195662009", "Acute viral pharyngitis", 2, 0.10, chronic=False),
    ConditionDef("444814009", "Viral sinusitis", 5, 0.10, chronic=False),
    ConditionDef("10509002", "Acute bronchitis", 1, 0.08, chronic=False, meds=("doxycycline",)),
    ConditionDef("68566005", "Urinary tract infectious disease", 2, 0.06, chronic=False, female_factor=4.0,
                 meds=("nitrofurantoin",)),
    ConditionDef("44465007", "Sprain of ankle", 6, 0.05, chronic=False, meds=("ibuprofen",)),
    ConditionDef("279039007", "Low back pain", 18, 0.10, chronic=False, meds=("naproxen",)),
    ConditionDef("43878008", "Streptococcal sore throat", 3, 0.04, chronic=False,
                 meds=("phenoxymethylpenicillin",)),
)

#: conditions to fall back on so that everyone has at least one problem
FALLBACK_CHILD = "65363002"
FALLBACK_ADULT = "279039007"
FALLBACK_ANY = "195662009"


@dataclass(frozen=True)
class MedicationDef:
    name: str  # the dm+d description
    dosage: str
    child_name: str | None = None  # a liquid or paediatric form for under-12s
    child_dosage: str | None = None


MEDICATIONS: dict[str, MedicationDef] = {
    "metformin": MedicationDef("Metformin 500mg tablets", "One tablet twice a day with meals"),
    "gliclazide": MedicationDef("Gliclazide 80mg tablets", "One tablet twice a day with meals"),
    "sitagliptin": MedicationDef("Sitagliptin 100mg tablets", "One tablet once a day"),
    "empagliflozin": MedicationDef("Empagliflozin 10mg tablets", "One tablet once a day"),
    "ramipril": MedicationDef("Ramipril 5mg capsules", "One capsule once a day"),
    "amlodipine": MedicationDef("Amlodipine 5mg tablets", "One tablet once a day"),
    "losartan": MedicationDef("Losartan 50mg tablets", "One tablet once a day"),
    "indapamide": MedicationDef("Indapamide 2.5mg tablets", "One tablet each morning"),
    "atorvastatin20": MedicationDef("Atorvastatin 20mg tablets", "One tablet at night"),
    "atorvastatin80": MedicationDef("Atorvastatin 80mg tablets", "One tablet at night"),
    "simvastatin": MedicationDef("Simvastatin 40mg tablets", "One tablet at night"),
    "apixaban": MedicationDef("Apixaban 5mg tablets", "One tablet twice a day"),
    "bisoprolol": MedicationDef("Bisoprolol 2.5mg tablets", "One tablet once a day"),
    "aspirin": MedicationDef("Aspirin 75mg dispersible tablets", "One tablet once a day"),
    "gtn": MedicationDef("Glyceryl trinitrate 400micrograms/dose pump sublingual spray",
                         "One or two sprays under the tongue when required for chest pain"),
    "furosemide": MedicationDef("Furosemide 40mg tablets", "One tablet each morning"),
    "clopidogrel": MedicationDef("Clopidogrel 75mg tablets", "One tablet once a day"),
    "tiotropium": MedicationDef("Tiotropium bromide 2.5micrograms/dose solution for inhalation cartridge "
                                "with device", "Two puffs once a day"),
    "salbutamol": MedicationDef("Salbutamol 100micrograms/dose inhaler CFC free",
                                "Two puffs when required for wheeze or breathlessness"),
    "beclometasone": MedicationDef("Beclometasone 100micrograms/dose inhaler CFC free", "Two puffs twice a day"),
    "levothyroxine": MedicationDef("Levothyroxine sodium 50microgram tablets", "One tablet each morning"),
    "paracetamol": MedicationDef("Paracetamol 500mg tablets",
                                 "One or two tablets up to four times a day when required",
                                 "Paracetamol 120mg/5ml oral suspension sugar free",
                                 "Dose by age, up to four times a day when required"),
    "cocodamol": MedicationDef("Co-codamol 30mg/500mg tablets",
                               "One or two tablets up to four times a day when required"),
    "naproxen": MedicationDef("Naproxen 250mg tablets", "One tablet twice a day with food"),
    "ibuprofen": MedicationDef("Ibuprofen 400mg tablets", "One tablet three times a day with food",
                               "Ibuprofen 100mg/5ml oral suspension sugar free",
                               "Dose by age, three times a day with food"),
    "alendronic": MedicationDef("Alendronic acid 70mg tablets",
                                "One tablet once a week, with a full glass of water before breakfast"),
    "adcal": MedicationDef("Calcium carbonate 1.5g / Colecalciferol 10micrograms chewable tablets",
                           "One tablet twice a day"),
    "donepezil": MedicationDef("Donepezil 10mg tablets", "One tablet at night"),
    "allopurinol": MedicationDef("Allopurinol 100mg tablets", "One tablet once a day"),
    "tamsulosin": MedicationDef("Tamsulosin 400microgram modified-release capsules", "One capsule once a day"),
    "methotrexate": MedicationDef("Methotrexate 2.5mg tablets", "Six tablets once a week on the same day"),
    "folic": MedicationDef("Folic acid 5mg tablets", "One tablet once a week, not on the methotrexate day"),
    "anastrozole": MedicationDef("Anastrozole 1mg tablets", "One tablet once a day"),
    "sertraline": MedicationDef("Sertraline 50mg tablets", "One tablet once a day"),
    "citalopram": MedicationDef("Citalopram 20mg tablets", "One tablet once a day"),
    "levetiracetam": MedicationDef("Levetiracetam 500mg tablets", "One tablet twice a day",
                                   "Levetiracetam 100mg/ml oral solution sugar free",
                                   "Dose by weight, twice a day"),
    "lamotrigine": MedicationDef("Lamotrigine 100mg tablets", "One tablet twice a day"),
    "sumatriptan": MedicationDef("Sumatriptan 50mg tablets",
                                 "One tablet at the start of a migraine; may repeat once after 2 hours"),
    "emollient": MedicationDef("Liquid paraffin 50% / White soft paraffin 50% ointment",
                               "Apply to the skin as often as required"),
    "hydrocortisone": MedicationDef("Hydrocortisone 1% cream", "Apply thinly twice a day for up to 7 days"),
    "cetirizine": MedicationDef("Cetirizine 10mg tablets", "One tablet once a day",
                                "Cetirizine 1mg/ml oral solution sugar free", "5ml once a day"),
    "beclo_nasal": MedicationDef("Beclometasone 50micrograms/dose nasal spray",
                                 "Two sprays into each nostril twice a day"),
    "omeprazole": MedicationDef("Omeprazole 20mg gastro-resistant capsules", "One capsule once a day"),
    "lansoprazole": MedicationDef("Lansoprazole 30mg gastro-resistant capsules", "One capsule once a day"),
    "mebeverine": MedicationDef("Mebeverine 135mg tablets", "One tablet three times a day before meals"),
    "calcipotriol": MedicationDef("Calcipotriol 50micrograms/g ointment", "Apply once or twice a day"),
    "insulin": MedicationDef("Insulin glargine 100units/ml solution for injection 3ml pre-filled pens",
                             "Inject as directed by the diabetes team"),
    "lithium": MedicationDef("Lithium carbonate 400mg modified-release tablets", "One tablet at night"),
    "ferrous": MedicationDef("Ferrous fumarate 210mg tablets", "One tablet twice a day"),
    "clarithromycin": MedicationDef("Clarithromycin 250mg tablets", "One tablet twice a day for 5 days",
                                    "Clarithromycin 125mg/5ml oral suspension",
                                    "Dose by weight, twice a day for 5 days"),
    "amoxicillin": MedicationDef("Amoxicillin 500mg capsules", "One capsule three times a day for 5 days"),
    "amoxicillin_susp": MedicationDef("Amoxicillin 250mg/5ml oral suspension sugar free",
                                      "5ml three times a day for 5 days"),
    "nitrofurantoin": MedicationDef("Nitrofurantoin 100mg modified-release capsules",
                                    "One capsule twice a day for 3 days"),
    "phenoxymethylpenicillin": MedicationDef("Phenoxymethylpenicillin 250mg tablets",
                                             "Two tablets four times a day for 10 days",
                                             "Phenoxymethylpenicillin 250mg/5ml oral solution",
                                             "5ml four times a day for 10 days"),
    "doxycycline": MedicationDef("Doxycycline 100mg capsules",
                                 "Two capsules on the first day, then one capsule a day for 4 days",
                                 "Amoxicillin 250mg/5ml oral suspension sugar free",
                                 "5ml three times a day for 5 days"),
}

#: what a penicillin-allergic patient is given instead
PENICILLINS = frozenset({"amoxicillin", "amoxicillin_susp", "phenoxymethylpenicillin"})
PENICILLIN_ALLERGENS = frozenset({"373270004", "372687004"})

#: acute medicines anyone might have had, so that everyone has at least one medication
ACUTE_FALLBACK = ("amoxicillin", "paracetamol", "ibuprofen")


@dataclass(frozen=True)
class AllergenDef:
    code: str
    display: str
    category: str  # medication | food | environment | biologic
    kind: str = "allergy"  # allergy | intolerance


ALLERGENS: tuple[AllergenDef, ...] = (
    AllergenDef("373270004", "Penicillin -class of antibiotic-", "medication"),
    AllergenDef("372687004", "Amoxicillin", "medication"),
    AllergenDef("387458008", "Aspirin", "medication", "intolerance"),
    AllergenDef("387207008", "Ibuprofen", "medication", "intolerance"),
    AllergenDef("387494007", "Codeine", "medication", "intolerance"),
    AllergenDef("762952008", "Peanut", "food"),
    AllergenDef("3718001", "Cow's milk", "food", "intolerance"),
    AllergenDef("102263004", "Eggs", "food"),
    AllergenDef("111088007", "Latex", "environment"),
    AllergenDef("288328004", "Bee venom", "environment"),
    AllergenDef("256277009", "Grass pollen", "environment"),
)

#: (code, display, severity) of allergic manifestations
REACTIONS: tuple[tuple[str, str, str], ...] = (
    ("271807003", "Eruption of skin", "mild"),
    ("126485001", "Urticaria", "moderate"),
    ("418290006", "Itching", "mild"),
    ("41291007", "Angioedema", "severe"),
    ("39579001", "Anaphylaxis", "severe"),
    ("422587007", "Nausea", "mild"),
    ("267036007", "Dyspnea", "moderate"),
    ("76067001", "Sneezing", "mild"),
)


@dataclass(frozen=True)
class VaccineDef:
    code: str
    display: str
    text: str  # what UK staff call it


VACCINES: dict[str, VaccineDef] = {
    "6in1": VaccineDef("871895005", "Vaccine product containing only Bordetella pertussis and Clostridium "
                       "tetani and Corynebacterium diphtheriae and Haemophilus influenzae type B and Hepatitis B "
                       "virus and Human poliovirus antigens", "6-in-1 vaccine (DTaP/IPV/Hib/HepB)"),
    "rotavirus": VaccineDef("836387005", "Vaccine product containing Rotavirus antigen", "Rotavirus vaccine"),
    "menb": VaccineDef("836401009", "Vaccine product containing Neisseria meningitidis antigen", "MenB vaccine"),
    "pcv": VaccineDef("836398006", "Vaccine product containing Streptococcus pneumoniae antigen",
                      "Pneumococcal conjugate vaccine (PCV)"),
    "hibmenc": VaccineDef("836500008", "Vaccine product containing only Haemophilus influenzae type B and "
                          "Neisseria meningitidis serogroup C antigens", "Hib/MenC vaccine"),
    "mmr": VaccineDef("871831003", "Vaccine product containing only Measles morbillivirus and Mumps "
                      "orthorubulavirus and Rubella virus antigens", "MMR vaccine"),
    "4in1": VaccineDef("871878002", "Vaccine product containing only Bordetella pertussis and Clostridium tetani "
                       "and Corynebacterium diphtheriae and Human poliovirus antigens",
                       "4-in-1 pre-school booster (DTaP/IPV)"),
    "hpv": VaccineDef("836379009", "Vaccine product containing Human papillomavirus antigen", "HPV vaccine"),
    "tdipv": VaccineDef("871837004", "Vaccine product containing only Clostridium tetani and Corynebacterium "
                        "diphtheriae and Human poliovirus antigens", "3-in-1 teenage booster (Td/IPV)"),
    "menacwy": VaccineDef("836401009", "Vaccine product containing Neisseria meningitidis antigen",
                          "MenACWY vaccine"),
    "ppv": VaccineDef("836398006", "Vaccine product containing Streptococcus pneumoniae antigen",
                      "Pneumococcal polysaccharide vaccine (PPV23)"),
    "shingles": VaccineDef("836495005", "Vaccine product containing Human alphaherpesvirus 3 antigen",
                           "Shingles vaccine"),
    "flu": VaccineDef("836377006", "Vaccine product containing Influenza virus antigen",
                      "Seasonal influenza vaccine"),
    "flu_nasal": VaccineDef("836377006", "Vaccine product containing Influenza virus antigen",
                            "Children's flu vaccine (nasal spray)"),
    "covid": VaccineDef("1119349007", "Vaccine product containing only Severe acute respiratory syndrome "
                        "coronavirus 2 messenger ribonucleic acid", "COVID-19 mRNA vaccine"),
}

#: the routine childhood schedule: (vaccine key, age in days when given, dose number)
CHILDHOOD_SCHEDULE: tuple[tuple[str, int, int], ...] = (
    ("6in1", 56, 1), ("rotavirus", 56, 1), ("menb", 56, 1),
    ("6in1", 84, 2), ("rotavirus", 84, 2), ("pcv", 84, 1),
    ("6in1", 112, 3), ("menb", 112, 2),
    ("hibmenc", 366, 1), ("mmr", 366, 1), ("pcv", 366, 2), ("menb", 366, 3),
    ("4in1", 1220, 1), ("mmr", 1220, 2),
    ("hpv", 4450, 1),
    ("tdipv", 5110, 1), ("menacwy", 5110, 1),
)

@dataclass(frozen=True)
class ObservationDef:
    loinc: str
    loinc_display: str
    unit: str  # as shown (UCUM code in `ucum`)
    ucum: str
    category: str  # vital-signs | laboratory
    snomed: str | None = None
    snomed_display: str | None = None
    decimals: int = 0
    text: str | None = None  # what UK clinicians call it ("Total cholesterol"), when not the SNOMED display
    #: the laboratory's reference range (None: open); female_* where women's differs
    low: float | None = None
    high: float | None = None
    female_low: float | None = None
    female_high: float | None = None

    def reference_range(self, sex: str) -> tuple[float | None, float | None]:
        if sex == "female":
            return (self.female_low if self.female_low is not None else self.low,
                    self.female_high if self.female_high is not None else self.high)
        return self.low, self.high


OBSERVATIONS: dict[str, ObservationDef] = {
    "bp": ObservationDef("85354-9", "Blood pressure panel with all children optional", "mmHg", "mm[Hg]",
                         "vital-signs", "75367002", "Blood pressure"),
    "systolic": ObservationDef("8480-6", "Systolic blood pressure", "mmHg", "mm[Hg]", "vital-signs",
                               "271649006", "Systolic blood pressure"),
    "diastolic": ObservationDef("8462-4", "Diastolic blood pressure", "mmHg", "mm[Hg]", "vital-signs",
                                "271650006", "Diastolic blood pressure"),
    "weight": ObservationDef("29463-7", "Body weight", "kg", "kg", "vital-signs", "27113001", "Body weight", 1),
    "height": ObservationDef("8302-2", "Body height", "cm", "cm", "vital-signs", "50373000", "Body height", 1),
    "bmi": ObservationDef("39156-5", "Body mass index (BMI) [Ratio]", "kg/m2", "kg/m2", "vital-signs",
                          "60621009", "Body mass index", 1),
    "hba1c": ObservationDef("59261-8", "Hemoglobin A1c/Hemoglobin.total in Blood by IFCC protocol",
                            "mmol/mol", "mmol/mol", "laboratory", "999791000000106",
                            "Haemoglobin A1c level - International Federation of Clinical Chemistry and Laboratory "
                            "Medicine standardised", text="HbA1c", low=20, high=41),
    "cholesterol": ObservationDef("14647-2", "Cholesterol [Moles/volume] in Serum or Plasma", "mmol/L",
                                  "mmol/L", "laboratory", "1005671000000105", "Serum cholesterol level",
                                  decimals=1, text="Total cholesterol", high=5.0),
    "hdl": ObservationDef("14646-4", "Cholesterol in HDL [Moles/volume] in Serum or Plasma", "mmol/L", "mmol/L",
                          "laboratory", "1005681000000107", "Serum HDL cholesterol level", decimals=1,
                          text="HDL cholesterol", low=1.0, female_low=1.2),
    "ldl": ObservationDef("22748-8", "Cholesterol in LDL [Moles/volume] in Serum or Plasma", "mmol/L", "mmol/L",
                          "laboratory", "1014501000000104", "Serum LDL cholesterol level", decimals=1,
                          text="LDL cholesterol", high=3.0),
    "triglycerides": ObservationDef("14927-8", "Triglyceride [Moles/volume] in Serum or Plasma", "mmol/L",
                                    "mmol/L", "laboratory", "1005691000000109", "Serum triglycerides level",
                                    decimals=1, text="Triglycerides", high=1.7),
    "haemoglobin": ObservationDef("718-7", "Hemoglobin [Mass/volume] in Blood", "g/L", "g/L", "laboratory",
                                  "1022431000000105", "Haemoglobin estimation", text="Haemoglobin",
                                  low=130, high=180, female_low=115, female_high=165),
    "wbc": ObservationDef("6690-2", "Leukocytes [#/volume] in Blood by Automated count", "×10⁹/L", "10*9/L",
                          "laboratory", "1022541000000102", "Total white blood count", decimals=1,
                          text="White cell count", low=4.0, high=11.0),
    "platelets": ObservationDef("777-3", "Platelets [#/volume] in Blood by Automated count", "×10⁹/L", "10*9/L",
                                "laboratory", "1022651000000100", "Platelet count", text="Platelets",
                                low=150, high=400),
    "sodium": ObservationDef("2951-2", "Sodium [Moles/volume] in Serum or Plasma", "mmol/L", "mmol/L",
                             "laboratory", "1000661000000107", "Serum sodium level", text="Sodium",
                             low=133, high=146),
    "potassium": ObservationDef("2823-3", "Potassium [Moles/volume] in Serum or Plasma", "mmol/L", "mmol/L",
                                "laboratory", "1000651000000109", "Serum potassium level", decimals=1,
                                text="Potassium", low=3.5, high=5.3),
    "creatinine": ObservationDef("14682-9", "Creatinine [Moles/volume] in Serum or Plasma", "µmol/L", "umol/L",
                                 "laboratory", "1000731000000107", "Serum creatinine level", text="Creatinine",
                                 low=59, high=104, female_low=45, female_high=84),
    "egfr": ObservationDef("62238-1", "Glomerular filtration rate/1.73 sq M.predicted [Volume Rate/Area] in "
                           "Serum, Plasma or Blood by Creatinine-based formula (CKD-EPI)",
                           "mL/min/1.73m²", "mL/min/{1.73_m2}", "laboratory", "1011481000000105",
                           "Estimated glomerular filtration rate using creatinine Chronic Kidney Disease "
                           "Epidemiology Collaboration equation per 1.73 square metres", text="eGFR", low=60),
}


@dataclass(frozen=True)
class ReportDef:
    """A laboratory report (DiagnosticReport) and the results it carries."""

    loinc: str
    loinc_display: str
    text: str
    members: tuple[str, ...]  # OBSERVATIONS keys


REPORTS: dict[str, ReportDef] = {
    "lipids": ReportDef("57698-3", "Lipid panel with direct LDL - Serum or Plasma", "Lipid profile",
                        ("cholesterol", "hdl", "ldl", "triglycerides")),
    "fbc": ReportDef("58410-2", "CBC panel - Blood by Automated count", "Full blood count",
                     ("haemoglobin", "wbc", "platelets")),
    "renal": ReportDef("24362-6", "Renal function 2000 panel - Serum or Plasma", "Renal function",
                       ("sodium", "potassium", "creatinine", "egfr")),
    "hba1c": ReportDef("4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood", "HbA1c", ("hba1c",)),
}

#: consultation notes: what the clinician wrote, by SOAP heading, for a presenting symptom (SNOMED CT code)
SYMPTOM_NOTES: dict[str, tuple[str, str, str]] = {
    "49727002": ("Cough for {days} days, clear sputum, no haemoptysis, no weight loss.",
                 "Chest clear, sats 97% on air, temperature 37.2.", "Likely viral. Self-care advice; return if worse "
                 "or not better in 3 weeks."),
    "25064002": ("Headaches for {days} days, frontal, worse in the evening. No visual disturbance, no vomiting.",
                 "Neuro examination normal. Fundi not seen.", "Tension-type headache. Simple analgesia, headache "
                 "diary; review in 4 weeks."),
    "21522001": ("Intermittent lower abdominal pain for {days} days. Bowels normal. No urinary symptoms.",
                 "Abdomen soft, mildly tender left iliac fossa, no guarding.", "Safety-netted; review if fever, "
                 "vomiting or worse pain."),
    "386661006": ("Fever for {days} days with aches. Eating and drinking.", "Temperature 38.1, throat mildly "
                  "red, chest clear.", "Viral illness. Fluids, paracetamol; return if not improving."),
    "161891005": ("Low back pain for {days} days after lifting. No leg weakness, no bladder or bowel change.",
                  "Tender paraspinal muscles, straight leg raise normal.", "Mechanical back pain. Keep active, "
                  "analgesia, physiotherapy self-referral."),
    "271807003": ("Itchy rash for {days} days on both forearms. No new soaps or medicines.",
                  "Erythematous papular rash, no blistering.", "Emollients and mild topical steroid; review in "
                  "2 weeks."),
    "267036007": ("Breathless on exertion for {days} days. No chest pain.", "Chest clear, heart sounds normal, "
                  "sats 96% on air.", "Bloods and ECG booked; review with results."),
    "84229001": ("Tired all the time for {days} days. Sleeping poorly. Mood fair.", "Looks well. No pallor.",
                 "Bloods: FBC, ferritin, TFTs, HbA1c. Review with results."),
    "162397003": ("Sore throat for {days} days. No cough.", "Tonsils enlarged, no exudate. FeverPAIN 1.",
                  "No antibiotic needed. Self-care advice."),
    "404640003": ("Dizzy on standing for {days} days. No falls.", "Lying and standing BP checked, no drop.",
                  "Advice on fluids; review if falls or fainting."),
}

#: (code, display, class code) of consultation types
ENCOUNTER_TYPES: tuple[tuple[str, str, str], ...] = (
    ("11429006", "Consultation", "AMB"),
    ("185349003", "Encounter for check up", "AMB"),
    ("185345009", "Encounter for symptom", "AMB"),
    ("390906007", "Follow-up encounter", "AMB"),
    ("185317003", "Telephone encounter", "VR"),
    ("439708006", "Home visit", "HH"),
)

ENCOUNTER_CLASSES: dict[str, str] = {"AMB": "ambulatory", "VR": "virtual", "HH": "home health"}

#: presenting symptoms, used as encounter reasons
SYMPTOMS: tuple[tuple[str, str], ...] = (
    ("49727002", "Cough"),
    ("25064002", "Headache"),
    ("21522001", "Abdominal pain"),
    ("386661006", "Fever"),
    ("161891005", "Backache"),
    ("271807003", "Eruption of skin"),
    ("267036007", "Dyspnea"),
    ("84229001", "Fatigue"),
    ("162397003", "Pain in throat"),
    ("404640003", "Dizziness"),
)
